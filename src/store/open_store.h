// Opens the store a --db URL names: "sqlite:PATH" (the embedded default, one host) or
// "postgres://USER@HOST:PORT/DB" (also "postgresql://"; several replicas share it): see
// sqlite_store.h and postgres_store.h.
#pragma once

#include <memory>
#include <string>

#include "maas/store.h"

namespace tokenmill::store {

std::unique_ptr<maas::Store> open_store(const std::string& url);

}  // namespace tokenmill::store
