#include "maas/audit.h"

#include "maas/crypto.h"
#include "maas/keys.h"

namespace tokenmill::maas {
namespace {

void append_field(std::string& out, std::string_view field) {
  out += std::to_string(field.size());
  out += ':';
  out += field;
}

bool is_secret_name(const std::string& name) {
  for (const char* s : {"key", "secret", "token", "password", "authorization"}) {
    if (name.find(s) != std::string::npos && name != "key_id") return true;
  }
  return false;
}

}  // namespace

std::string audit_hash(const AuditEntry& e) {
  std::string data;
  append_field(data, e.prev_hash);
  append_field(data, std::to_string(e.seq));
  append_field(data, std::to_string(e.at));
  append_field(data, e.actor);
  append_field(data, e.action);
  append_field(data, e.target);
  append_field(data, e.details);
  return to_hex(sha256(data));
}

int64_t first_broken_audit_entry(const std::vector<AuditEntry>& entries) {
  std::string prev;
  int64_t expected_seq = 1;
  for (const AuditEntry& e : entries) {
    if (e.seq != expected_seq || e.prev_hash != prev || audit_hash(e) != e.hash) return e.seq;
    prev = e.hash;
    ++expected_seq;
  }
  return 0;
}

nlohmann::json mask_secrets(const nlohmann::json& details) {
  if (details.is_object()) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [k, v] : details.items()) {
      out[k] = is_secret_name(k) && v.is_string() ? nlohmann::json(mask_credential(v.get<std::string>())) : mask_secrets(v);
    }
    return out;
  }
  if (details.is_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& v : details) out.push_back(mask_secrets(v));
    return out;
  }
  return details;
}

}  // namespace tokenmill::maas
