// System-library shim: lets Swift import png.h from Debian's libpng-dev.
// Nothing else belongs here; the one Swift type that owns this library wraps it.
#include <png.h>
