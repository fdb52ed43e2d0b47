// `tokenmill inspect FILE [--json]`: what a GGUF file holds — architecture, hyper-parameters,
// tokenizer, chat template, tensors — for people (text) and for programs (--json).
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/commands.h"
#include "gguf/file.h"

namespace tokenmill::cli {
namespace {

using nlohmann::ordered_json;

// Arrays longer than this are summarised rather than printed: vocabularies have 10^5 entries.
constexpr size_t kMaxPrintedArray = 64;

// The double whose shortest decimal form is the float's own (1e-05, not 9.99999974e-06).
double shortest_double(float x) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, x);
  *end = '\0';
  return std::strtod(buf, nullptr);
}

ordered_json to_json(const gguf::Value& v) {
  return std::visit(
      [](const auto& x) -> ordered_json {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, gguf::Array>) {
          if (x.items.size() > kMaxPrintedArray)
            return {{"type", std::string(gguf::value_type_name(x.element_type))}, {"length", x.items.size()}};
          ordered_json a = ordered_json::array();
          for (const auto& item : x.items) a.push_back(to_json(item));
          return a;
        } else if constexpr (std::is_same_v<T, uint8_t> || std::is_same_v<T, uint16_t> ||
                             std::is_same_v<T, uint32_t> || std::is_same_v<T, uint64_t>) {
          return static_cast<uint64_t>(x);
        } else if constexpr (std::is_same_v<T, int8_t> || std::is_same_v<T, int16_t> ||
                             std::is_same_v<T, int32_t> || std::is_same_v<T, int64_t>) {
          return static_cast<int64_t>(x);
        } else if constexpr (std::is_same_v<T, float>) {
          return shortest_double(x);
        } else {
          return x;
        }
      },
      v.v);
}

std::string shape_string(const std::vector<uint64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string human_bytes(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double x = static_cast<double>(n);
  int u = 0;
  while (x >= 1024 && u < 4) {
    x /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", x, units[u]);
  return buf;
}

// One line for a metadata value in the text view; long strings and arrays are abbreviated.
std::string short_value(const gguf::Value& v) {
  if (const auto* a = v.as_array()) {
    std::string s = std::string(gguf::value_type_name(a->element_type)) + "[" + std::to_string(a->items.size()) + "]";
    if (a->items.size() <= 8 && a->element_type != gguf::ValueType::ARRAY) s += " " + to_json(v).dump(-1, ' ', false, ordered_json::error_handler_t::replace);
    return s;
  }
  if (const auto* str = v.as_string()) {
    std::string shown = str->size() > 60 ? str->substr(0, 57) + "..." : *str;
    for (char& c : shown)
      if (c == '\n' || c == '\r' || c == '\t') c = ' ';
    return ordered_json(shown).dump(-1, ' ', false, ordered_json::error_handler_t::replace);
  }
  return to_json(v).dump();
}

uint64_t parameter_count(const gguf::File& f) {
  uint64_t n = 0;
  for (const auto& t : f.tensors()) n += t.n_elements();
  return n;
}

void print_json(const gguf::File& f) {
  ordered_json j;
  j["path"] = f.path();
  j["version"] = f.version();
  j["architecture"] = f.get_string("general.architecture").value_or("");
  j["tensor_count"] = f.tensors().size();
  j["parameter_count"] = parameter_count(f);
  j["total_bytes"] = f.total_bytes();
  ordered_json meta = ordered_json::object();
  for (const auto& e : f.metadata()) meta[e.key] = to_json(e.value);
  j["metadata"] = std::move(meta);
  ordered_json tensors = ordered_json::array();
  for (const auto& t : f.tensors()) {
    tensors.push_back({{"name", t.name},
                       {"type", std::string(gguf::tensor_type_name(t.type))},
                       {"shape", t.shape},
                       {"bytes", t.n_bytes},
                       {"offset", t.offset}});
  }
  j["tensors"] = std::move(tensors);
  std::printf("%s\n", j.dump(2, ' ', false, ordered_json::error_handler_t::replace).c_str());
}

void print_text(const gguf::File& f) {
  const std::string arch = f.get_string("general.architecture").value_or("(none)");
  std::printf("file:          %s\n", f.path().c_str());
  std::printf("format:        GGUF v%u, alignment %llu, %s\n", f.version(),
              static_cast<unsigned long long>(f.alignment()), human_bytes(f.total_bytes()).c_str());
  std::printf("architecture:  %s\n", arch.c_str());
  if (auto name = f.get_string("general.name")) std::printf("name:          %s\n", name->c_str());

  std::printf("\nhyper-parameters:\n");
  const std::string prefix = arch + ".";
  for (const auto& e : f.metadata())
    if (e.key.rfind(prefix, 0) == 0)
      std::printf("  %-40s %s\n", e.key.substr(prefix.size()).c_str(), short_value(e.value).c_str());

  std::printf("\ntokenizer:     ");
  if (auto model = f.get_string("tokenizer.ggml.model")) {
    const auto* tokens = f.get_array("tokenizer.ggml.tokens");
    const auto* merges = f.get_array("tokenizer.ggml.merges");
    std::printf("%s, pre '%s', %zu tokens, %zu merges", model->c_str(),
                f.get_string("tokenizer.ggml.pre").value_or("default").c_str(),
                tokens ? tokens->items.size() : 0, merges ? merges->items.size() : 0);
    for (const char* id : {"bos", "eos", "eot", "padding"}) {
      const std::string key = std::string("tokenizer.ggml.") + id + "_token_id";
      if (f.has(key)) std::printf(", %s %llu", id, static_cast<unsigned long long>(*f.get_uint(key)));
    }
    std::printf("\n");
  } else {
    std::printf("none\n");
  }
  const auto tmpl = f.get_string("tokenizer.chat_template");
  std::printf("chat template: %s\n", tmpl ? ("yes (" + std::to_string(tmpl->size()) + " bytes)").c_str() : "no");

  std::printf("\nother metadata:\n");
  for (const auto& e : f.metadata()) {
    if (e.key.rfind(prefix, 0) == 0 || e.key == "tokenizer.chat_template") continue;
    std::printf("  %-42s %s\n", e.key.c_str(), short_value(e.value).c_str());
  }

  std::printf("\ntensors (%zu):\n", f.tensors().size());
  std::map<std::string, uint64_t> bytes_by_type;
  uint64_t total = 0;
  for (const auto& t : f.tensors()) {
    const std::string type(gguf::tensor_type_name(t.type));
    std::printf("  %-36s %-7s %-26s %12llu\n", t.name.c_str(), type.c_str(), shape_string(t.shape).c_str(),
                static_cast<unsigned long long>(t.n_bytes));
    bytes_by_type[type] += t.n_bytes;
    total += t.n_bytes;
  }
  std::printf("\ntotal: %zu tensors, %llu parameters, %s of tensor data (", f.tensors().size(),
              static_cast<unsigned long long>(parameter_count(f)), human_bytes(total).c_str());
  bool first = true;
  for (const auto& [type, n] : bytes_by_type) {
    std::printf("%s%s %s", first ? "" : ", ", type.c_str(), human_bytes(n).c_str());
    first = false;
  }
  std::printf(")\n");
}

}  // namespace

void register_inspect(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect", "Show what a GGUF file holds");
  auto path = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  cmd->add_option("file", *path, "GGUF file (the first shard of a split model)")->required();
  cmd->add_flag("--json", *json, "Print one JSON object");
  cmd->callback([path, json] {
    const auto f = gguf::File::open(*path);
    if (*json)
      print_json(f);
    else
      print_text(f);
  });
}

}  // namespace tokenmill::cli
