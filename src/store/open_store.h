// Opens the store a --db URL names: "sqlite:PATH" (the embedded default). PostgreSQL
// ("postgresql://...") is the next backend and is refused with a clear message until then.
#pragma once

#include <memory>
#include <string>

#include "maas/store.h"

namespace tokenmill::store {

std::unique_ptr<maas::Store> open_store(const std::string& url);

}  // namespace tokenmill::store
