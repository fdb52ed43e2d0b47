#include "api/request.h"

namespace tokenmill::api {

ApiError ApiError::invalid(std::string message, std::string param, std::string code) {
  ApiError e;
  e.message = std::move(message);
  e.param = std::move(param);
  e.code = std::move(code);
  return e;
}

ApiError ApiError::from(const Rejection& r) {
  ApiError e;
  e.status = r.http_status;
  e.type = r.type;
  e.code = r.code;
  e.message = r.message;
  e.business_code = r.business_code;
  e.retry_after_seconds = r.retry_after_seconds;
  e.details = r.details;
  return e;
}

}  // namespace tokenmill::api
