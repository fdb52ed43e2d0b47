#include "maas/rejection.h"

namespace tokenmill::maas {

nlohmann::json Rejection::to_json() const {
  nlohmann::json error = {{"message", message}, {"type", type}, {"param", nullptr}, {"code", std::to_string(code)}};
  if (next_flush_time > 0) error["next_flush_time"] = next_flush_time;
  for (const auto& [k, v] : extra.items()) error[k] = v;
  return {{"error", error}};
}

}  // namespace tokenmill::maas
