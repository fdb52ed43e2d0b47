#include "api/access.h"

#include <algorithm>

namespace tokenmill::api {

bool Principal::may_use(const std::string& model) const {
  return !allowed_models || std::find(allowed_models->begin(), allowed_models->end(), model) != allowed_models->end();
}

namespace {

class OpenTicket final : public Ticket {
 public:
  void settle(const Usage&, Outcome, const Timings&) override {}
};

}  // namespace

std::variant<Principal, Rejection> OpenAccess::authenticate(const Credentials&) { return Principal{}; }

std::variant<std::unique_ptr<Ticket>, Rejection> OpenAccess::admit(const Principal&, const AdmissionRequest&) {
  return std::unique_ptr<Ticket>(std::make_unique<OpenTicket>());
}

}  // namespace tokenmill::api
