#include "maas/names.h"

#include <cstdio>
#include <string>

#include "common/error.h"

namespace tokenmill::maas {
namespace {

bool alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

// Shows at most 40 characters of a refused string, with control bytes escaped.
std::string shown(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 40)) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", u);
      out += buf;
    } else {
      out += c;
    }
  }
  if (s.size() > 40) out += "...";
  return out;
}

}  // namespace

void check_name(std::string_view name, std::string_view what) {
  bool ok = !name.empty() && name.size() <= 64 && alnum(name[0]);
  for (char c : name) ok = ok && (alnum(c) || c == '.' || c == '_' || c == '-');
  if (!ok) {
    throw Error(std::string(what) + " must be 1 to 64 letters, digits, '.', '_' or '-' (starting with a letter or digit), got '" +
                shown(name) + "'");
  }
}

void check_model_name(std::string_view model) {
  bool ok = !model.empty() && model.size() <= 128;
  for (char c : model) ok = ok && c > 0x20 && c < 0x7F && c != '"' && c != '\'' && c != '\\' && c != ',';
  if (!ok) throw Error("a model name must be 1 to 128 printable characters without spaces, quotes or commas, got '" + shown(model) + "'");
}

bool is_valid_request_id(std::string_view id) {
  bool ok = !id.empty() && id.size() <= 128;
  for (char c : id) ok = ok && (alnum(c) || c == '.' || c == '_' || c == '-' || c == ':');
  return ok;
}

void check_request_id(std::string_view id) {
  if (!is_valid_request_id(id)) {
    throw Error("a request id must be 1 to 128 letters, digits, '.', '_', '-' or ':', got '" + shown(id) + "'");
  }
}

}  // namespace tokenmill::maas
