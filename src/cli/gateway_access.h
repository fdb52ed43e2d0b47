// The keyed api::Access: the model-as-a-service Gateway (maas/) behind the server's admission
// seam (api/access.h), and the management HTTP API (maas/admin_api.h) as the server's extra
// routes. api/ and maas/ never see each other; this is where they meet.
#pragma once

#include <optional>

#include "api/access.h"
#include "api/server.h"
#include "maas/gateway.h"
#include "maas/store.h"

namespace tokenmill::cli {

class GatewayAccess final : public api::Access {
 public:
  explicit GatewayAccess(maas::Store& store);

  std::variant<api::Principal, api::Rejection> authenticate(const api::Credentials& credentials) override;
  std::variant<std::unique_ptr<api::Ticket>, api::Rejection> admit(const api::Principal& principal,
                                                                   const api::AdmissionRequest& request) override;

  // /admin/v1/..., /v1/quota and /v1/usage; nullopt for any other path.
  std::optional<api::ExtraResponse> management(const api::ExtraRequest& request);

  maas::Gateway& gateway() { return gateway_; }

 private:
  std::variant<maas::Principal, maas::Rejection> principal_of(const api::Credentials& credentials);

  maas::Store& store_;
  maas::Gateway gateway_;
};

}  // namespace tokenmill::cli
