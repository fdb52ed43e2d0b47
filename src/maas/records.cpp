#include "maas/records.h"

#include <ctime>

#include "common/error.h"

namespace tokenmill::maas {

std::string_view outcome_name(Outcome o) {
  switch (o) {
    case Outcome::Completed: return "completed";
    case Outcome::ClientDisconnected: return "client_disconnected";
    case Outcome::Error: return "error";
    case Outcome::Rejected: return "rejected";
  }
  return "error";
}

std::optional<Outcome> parse_outcome(std::string_view name) {
  for (Outcome o : {Outcome::Completed, Outcome::ClientDisconnected, Outcome::Error, Outcome::Rejected}) {
    if (outcome_name(o) == name) return o;
  }
  return std::nullopt;
}

std::string_view billing_name(Billing b) {
  switch (b) {
    case Billing::None: return "none";
    case Billing::Balance: return "balance";
    case Billing::Plan: return "plan";
  }
  return "none";
}

Billing parse_billing(std::string_view name) {
  if (name == "balance") return Billing::Balance;
  if (name == "plan") return Billing::Plan;
  if (name == "none") return Billing::None;
  throw Error("unknown billing mode '" + std::string(name) + "' in the store");
}

}  // namespace tokenmill::maas

namespace tokenmill::maas {

std::string format_utc(TimeMs ms) {
  const time_t seconds = static_cast<time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace tokenmill::maas
