#include "maas/money.h"

#include <limits>

#include "common/error.h"

namespace tokenmill::maas {

int64_t parse_fixed(std::string_view text, int scale, int64_t max_abs, std::string_view what) {
  auto fail = [&]() -> Error {
    std::string shown(text.substr(0, 40));
    if (text.size() > 40) shown += "...";
    return Error(std::string(what) + " must be a decimal number with at most " + std::to_string(scale) +
                 " decimals, got '" + shown + "'");
  };
  size_t i = 0;
  bool negative = false;
  if (i < text.size() && (text[i] == '-' || text[i] == '+')) negative = text[i++] == '-';
  unsigned __int128 value = 0;
  int whole_digits = 0;
  int fraction_digits = 0;
  bool in_fraction = false;
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '.' && !in_fraction) {
      in_fraction = true;
      continue;
    }
    if (c < '0' || c > '9') throw fail();
    if (in_fraction && ++fraction_digits > scale) throw fail();
    if (!in_fraction) ++whole_digits;
    value = value * 10 + static_cast<unsigned>(c - '0');
    if (value > static_cast<unsigned __int128>(std::numeric_limits<int64_t>::max())) {
      throw Error(std::string(what) + " is out of range: '" + std::string(text.substr(0, 40)) + "'");
    }
  }
  if (whole_digits + fraction_digits == 0) throw fail();
  for (int k = fraction_digits; k < scale; ++k) value *= 10;
  if (value > static_cast<unsigned __int128>(max_abs)) {
    throw Error(std::string(what) + " is out of range (at most " + format_fixed(max_abs, scale) + "): '" +
                std::string(text.substr(0, 40)) + "'");
  }
  const auto v = static_cast<int64_t>(value);
  return negative ? -v : v;
}

std::string format_fixed(int64_t value, int scale, int min_fraction) {
  const bool negative = value < 0;
  // Magnitude in unsigned arithmetic: -INT64_MIN does not fit int64_t.
  const uint64_t magnitude = negative ? 0 - static_cast<uint64_t>(value) : static_cast<uint64_t>(value);
  uint64_t pow10 = 1;
  for (int k = 0; k < scale; ++k) pow10 *= 10;
  std::string fraction = std::to_string(magnitude % pow10);
  fraction.insert(0, static_cast<size_t>(scale) - fraction.size(), '0');
  while (static_cast<int>(fraction.size()) > min_fraction && !fraction.empty() && fraction.back() == '0') {
    fraction.pop_back();
  }
  std::string out = (negative ? "-" : "") + std::to_string(magnitude / pow10);
  if (!fraction.empty()) out += "." + fraction;
  return out;
}

int64_t mul_div_ceil(int64_t a, int64_t b, int64_t c) {
  if (a < 0 || b < 0 || c <= 0) throw Error("internal: mul_div_ceil needs non-negative operands");
  const unsigned __int128 product = static_cast<unsigned __int128>(a) * static_cast<unsigned __int128>(b);
  const unsigned __int128 q = (product + static_cast<unsigned __int128>(c) - 1) / static_cast<unsigned __int128>(c);
  if (q > static_cast<unsigned __int128>(std::numeric_limits<int64_t>::max())) {
    throw Error("amount out of range");
  }
  return static_cast<int64_t>(q);
}

}  // namespace tokenmill::maas
