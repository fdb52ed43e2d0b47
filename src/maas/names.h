// What a name may look like: tenant, project, plan and window names, model names and request
// ids. Everything that reaches the store or a log goes through one of these checks first, so an
// oversized or control-character string is a clean error, never a stored oddity.
#pragma once

#include <string_view>

namespace tokenmill::maas {

// 1..64 characters of [A-Za-z0-9._-], starting with a letter or digit.
void check_name(std::string_view name, std::string_view what);
// 1..128 printable ASCII characters without spaces, quotes or backslashes ("org/model:q4_0").
void check_model_name(std::string_view model);
// 1..128 characters of [A-Za-z0-9._:-].
void check_request_id(std::string_view id);
bool is_valid_request_id(std::string_view id);

}  // namespace tokenmill::maas
