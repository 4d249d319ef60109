// System-library shim: lets Swift import sqlite3.h from Debian's libsqlite3-dev.
// Nothing else belongs here; the one Swift type that owns this library wraps it.
#include <sqlite3.h>
