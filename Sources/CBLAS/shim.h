// System-library shim: lets Swift import cblas.h from Debian's libopenblas-dev.
// Nothing else belongs here; the one Swift type that owns this library wraps it.
#include <cblas.h>

// openblas_set_num_threads / openblas_get_num_threads are OpenBLAS extensions declared in its cblas.h.
