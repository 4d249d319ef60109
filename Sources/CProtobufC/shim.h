// System-library shim: lets Swift import protobuf-c/protobuf-c.h from Debian's libprotobuf-c-dev.
// Nothing else belongs here; the one Swift type that owns this library wraps it.
#include <protobuf-c/protobuf-c.h>
