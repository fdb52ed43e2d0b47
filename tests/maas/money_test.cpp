// Exact decimal amounts: parsing refuses anything inexact or out of range, formatting inverts
// parsing, and rounding in costs always goes up.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

#include "common/error.h"
#include "maas/money.h"

namespace tokenmill::maas {
namespace {

TEST(Money, ParsesPlainDecimals) {
  EXPECT_EQ(parse_money("0", "x"), 0);
  EXPECT_EQ(parse_money("12", "x"), 12'000'000);
  EXPECT_EQ(parse_money("0.5", "x"), 500'000);
  EXPECT_EQ(parse_money(".25", "x"), 250'000);
  EXPECT_EQ(parse_money("3.", "x"), 3'000'000);
  EXPECT_EQ(parse_money("-1.000001", "x"), -1'000'001);
  EXPECT_EQ(parse_money("+7.123456", "x"), 7'123'456);
  EXPECT_EQ(parse_fixed("1.5", 3, 1'000'000, "m"), 1500);
}

TEST(Money, RefusesInexactOrMalformedText) {
  for (const char* bad : {"", "-", ".", "1.2345678", "1e3", "0x10", "1,5", " 1", "1 ", "1..2", "--1", "NaN", "inf",
                          "12a", "1'000", "１"}) {
    EXPECT_THROW(parse_money(bad, "amount"), Error) << bad;
  }
}

TEST(Money, RefusesOutOfRange) {
  EXPECT_THROW(parse_money("1000000000001", "amount"), Error);
  EXPECT_THROW(parse_money("99999999999999999999999999", "amount"), Error);
  EXPECT_THROW(parse_money("-1000000000001", "amount"), Error);
  EXPECT_EQ(parse_money("1000000000000", "amount"), kMaxMicros);
  try {
    parse_money("123456789012345678901234567890", "top-up amount");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("top-up amount"), std::string::npos);
  }
}

TEST(Money, FormatsAndRoundTrips) {
  EXPECT_EQ(format_money(0), "0.00");
  EXPECT_EQ(format_money(1'500'000), "1.50");
  EXPECT_EQ(format_money(1'234'567), "1.234567");
  EXPECT_EQ(format_money(-10), "-0.00001");
  EXPECT_EQ(format_fixed(1500, 3), "1.5");
  EXPECT_EQ(format_fixed(2000, 3), "2");
  EXPECT_EQ(format_fixed(std::numeric_limits<int64_t>::min(), 6), "-9223372036854.775808");
  for (int64_t v : {int64_t{0}, int64_t{1}, int64_t{999'999}, int64_t{1'000'000}, int64_t{123'456'789'012}, -int64_t{42}}) {
    EXPECT_EQ(parse_money(format_money(v), "x"), v);
  }
}

TEST(Money, MulDivRoundsUp) {
  EXPECT_EQ(mul_div_ceil(10, 3, 4), 8);  // 7.5 -> 8
  EXPECT_EQ(mul_div_ceil(10, 4, 4), 10);
  EXPECT_EQ(mul_div_ceil(0, 5, 7), 0);
  EXPECT_EQ(mul_div_ceil(int64_t{1} << 62, 4, 8), int64_t{1} << 61);  // the product needs 128 bits
  EXPECT_THROW(mul_div_ceil(int64_t{1} << 62, 8, 1), Error);
  EXPECT_THROW(mul_div_ceil(-1, 1, 1), Error);
}

}  // namespace
}  // namespace tokenmill::maas
