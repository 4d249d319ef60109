// System-library shim: lets Swift import zstd.h from Debian's libzstd-dev.
// Nothing else belongs here; the one Swift type that owns this library wraps it.
#include <zstd.h>
