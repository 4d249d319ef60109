// System-library shim: lets Swift import turbojpeg.h from Debian's libturbojpeg0-dev (libjpeg-turbo).
// Nothing else belongs here; the one Swift type that owns this library wraps it.
#include <turbojpeg.h>
