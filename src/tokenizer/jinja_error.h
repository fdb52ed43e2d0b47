// Errors of the chat-template engine. Every error that reaches the user names the template line
// and column it comes from, so a broken template can be fixed without reading our code.
#pragma once

#include <string>

#include "common/error.h"

namespace tokenmill::jinja {

// A problem found while evaluating, before the evaluator has attached a location to it.
class RuntimeError : public Error {
 public:
  using Error::Error;
};

// The user-facing error: "chat template line 3, column 14: unknown filter 'foo'".
class TemplateError : public Error {
 public:
  TemplateError(int line, int column, const std::string& message)
      : Error("chat template line " + std::to_string(line) + ", column " + std::to_string(column) +
              ": " + message),
        line_(line),
        column_(column),
        reason_(message) {}
  int line() const { return line_; }
  int column() const { return column_; }
  // The message without the location, e.g. the text given to raise_exception().
  const std::string& reason() const { return reason_; }

 private:
  int line_;
  int column_;
  std::string reason_;
};

}  // namespace tokenmill::jinja
