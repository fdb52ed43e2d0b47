// The SQLite schema as an ordered list of migrations. A database records the migrations it has
// applied; opening it applies the missing ones, each in its own transaction, and refuses a
// database written by a newer tokenmill.
#pragma once

#include "store/sqlite.h"

namespace tokenmill::store {

int latest_schema_version();
void migrate(Database& db);

}  // namespace tokenmill::store
