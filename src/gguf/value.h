// Metadata values of a GGUF file. A Value's variant index equals its GGUF value-type id, so
// reading and writing need no separate type tag.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace tokenmill::gguf {

enum class ValueType : uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};

std::string_view value_type_name(ValueType type);  // "u32", "string", "array", ...

struct Value;

struct Array {
  ValueType element_type = ValueType::U8;
  std::vector<Value> items;
};

struct Value {
  using Storage = std::variant<uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t, float, bool,
                               std::string, Array, uint64_t, int64_t, double>;
  Storage v;

  Value() = default;
  template <typename T>
  Value(T x) : v(std::move(x)) {}
  Value(const char* s) : v(std::string(s)) {}

  ValueType type() const { return static_cast<ValueType>(v.index()); }

  // Any integer type (and bool) as a wider integer; nullopt for other types or out of range.
  std::optional<uint64_t> as_uint() const;
  std::optional<int64_t> as_int() const;
  // f32 / f64, and integers converted.
  std::optional<double> as_float() const;
  const std::string* as_string() const { return std::get_if<std::string>(&v); }
  const Array* as_array() const { return std::get_if<Array>(&v); }
  std::optional<bool> as_bool() const;
};

// Builds a typed array value from a vector of scalars or strings.
template <typename T>
Value make_array(ValueType element_type, const std::vector<T>& xs) {
  Array a;
  a.element_type = element_type;
  a.items.reserve(xs.size());
  for (const auto& x : xs) a.items.emplace_back(x);
  return Value(std::move(a));
}

}  // namespace tokenmill::gguf
