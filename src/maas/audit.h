// The admin audit log: every admin action as an append-only, hash-chained entry. Each hash is
// SHA-256 over the previous entry's hash and this entry's fields (length-prefixed, so no two
// different entries encode alike); changing, removing or reordering any entry breaks every
// hash after it. Publishing the newest hash somewhere else makes truncation detectable too.
// Secrets never reach the log: details are masked before they are written.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "maas/records.h"

namespace tokenmill::maas {

// The hex hash of `entry` (its prev_hash included, its own hash field ignored).
std::string audit_hash(const AuditEntry& entry);

// The seq of the first entry whose chain does not hold, or 0 when the whole log is intact.
// `entries` must be the whole log in seq order.
int64_t first_broken_audit_entry(const std::vector<AuditEntry>& entries);

// A copy of `details` with every value under a secret-looking key ("key", "secret", "token",
// "password", "authorization") replaced by its masked form.
nlohmann::json mask_secrets(const nlohmann::json& details);

}  // namespace tokenmill::maas
