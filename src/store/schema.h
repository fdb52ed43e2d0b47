// The schema as an ordered list of migrations, one text for both backends. A database records
// the migrations it has applied; opening it applies the missing ones in one transaction (one
// process at a time) and refuses a database written by a newer tokenmill.
#pragma once

#include "store/sql.h"

namespace tokenmill::store {

enum class Dialect { Sqlite, Postgres };

int latest_schema_version();
void migrate(Connection& db, Dialect dialect);

}  // namespace tokenmill::store
