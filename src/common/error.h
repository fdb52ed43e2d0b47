// common/: the few utilities every subsystem uses (errors, mapped files, logging, progress,
// deterministic random numbers). Depends on nothing but the standard library.
#pragma once

#include <stdexcept>
#include <string>

namespace tokenmill {

// The one exception type for bad input (files, arguments, requests). Its message is the whole
// user-facing sentence; callers add context (file, offset, tensor) before it reaches the user.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace tokenmill
