// System-library shim: lets Swift import openslide/openslide.h from Debian's libopenslide-dev.
// Nothing else belongs here; the one Swift type that owns this library wraps it.
#include <openslide/openslide.h>
