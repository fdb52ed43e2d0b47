// Malformed and hostile GGUF files: each must give one FormatError naming the file and offset,
// never a crash, hang or huge allocation. The truncation and mutation sweeps also run under
// AddressSanitizer in the gguf_mutation_asan test (tests/gguf/CMakeLists via tests/CMakeLists).
#include <gtest/gtest.h>

#include <regex>

#include "common/random.h"
#include "gguf/file.h"
#include "gguf/writer.h"
#include "gguf_bytes.h"

namespace tokenmill::gguf {
namespace {

using testing::GgufBytes;
using testing::write_temp;

constexpr uint32_t kF32 = 0, kQ4K = 12;

// Expects File::open to fail with a message that names the file, an offset and `needle`.
void expect_rejected(const std::vector<uint8_t>& bytes, const std::string& needle, const char* name = "bad.gguf") {
  const std::string path = write_temp(name, bytes);
  try {
    File::open(path);
    FAIL() << "accepted a malformed file; expected error containing: " << needle;
  } catch (const FormatError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "error must be one line: " << msg;
  }
}

// A small valid file: two metadata entries and two F32 tensors.
GgufBytes valid_file() {
  GgufBytes g;
  g.header(2, 2).kv_str("general.architecture", "llama").kv_u32("llama.block_count", 1);
  g.tensor("a", {8}, kF32, 0).tensor("b", {4, 2}, kF32, 32);
  g.pad().zeros(64);
  return g;
}

TEST(GgufHostile, ValidBaselineOpens) {
  const File f = File::open(write_temp("valid.gguf", valid_file().bytes));
  EXPECT_EQ(f.tensors().size(), 2u);
}

TEST(GgufHostile, BadMagicVersionAndEndianness) {
  auto g = valid_file();
  g.bytes[0] = 'X';
  expect_rejected(g.bytes, "bad magic");
  g = valid_file();
  g.bytes[4] = 1;
  expect_rejected(g.bytes, "version 1");
  g = valid_file();
  g.bytes[4] = 0;
  g.bytes[7] = 3;
  expect_rejected(g.bytes, "big-endian");
  g = valid_file();
  g.bytes[4] = 9;
  expect_rejected(g.bytes, "unsupported GGUF version 9");
  expect_rejected({'G', 'G', 'U', 'F'}, "too small");
}

TEST(GgufHostile, HugeCountsAreRejectedBeforeAllocating) {
  GgufBytes g;
  g.header(uint64_t{1} << 62, 0).zeros(64);
  expect_rejected(g.bytes, "tensor count");
  GgufBytes h;
  h.header(0, uint64_t{1} << 62).zeros(64);
  expect_rejected(h.bytes, "metadata count");
  GgufBytes a;
  a.header(0, 1).str("k").put<uint32_t>(9).put<uint32_t>(4).put<uint64_t>(uint64_t{1} << 61).zeros(16);
  expect_rejected(a.bytes, "cannot fit");
}

TEST(GgufHostile, LengthsPastTheEnd) {
  GgufBytes g;
  g.header(0, 1).put<uint64_t>(1000).zeros(8);
  expect_rejected(g.bytes, "key length 1000 runs past the end");
  GgufBytes s;
  s.header(0, 1).str("k").put<uint32_t>(8).put<uint64_t>(uint64_t{1} << 63);
  expect_rejected(s.bytes, "string length");
  GgufBytes t;
  t.header(0, 1).str("k").put<uint32_t>(4);  // value missing
  expect_rejected(t.bytes, "unexpected end of file");
}

TEST(GgufHostile, MetadataRules) {
  GgufBytes dup;
  dup.header(0, 2).kv_u32("k", 1).kv_u32("k", 2);
  expect_rejected(dup.bytes, "duplicate metadata key 'k'");
  GgufBytes empty;
  empty.header(0, 1).kv_u32("", 1);
  expect_rejected(empty.bytes, "empty metadata key");
  GgufBytes type;
  type.header(0, 1).str("k").put<uint32_t>(13).put<uint32_t>(0);
  expect_rejected(type.bytes, "unknown value type 13");
  GgufBytes boolean;
  boolean.header(0, 1).str("k").put<uint32_t>(7).put<uint8_t>(2);
  expect_rejected(boolean.bytes, "bool value 2");
  GgufBytes align;
  align.header(0, 1).kv_u32("general.alignment", 48);
  expect_rejected(align.bytes, "not a power of two");
  GgufBytes align_type;
  align_type.header(0, 1).kv_str("general.alignment", "32");
  expect_rejected(align_type.bytes, "must be a u32");
  GgufBytes deep;
  deep.header(0, 1).str("k").put<uint32_t>(9);  // the value is an array...
  for (int i = 0; i < 20; ++i) deep.put<uint32_t>(9).put<uint64_t>(1);  // ...of one array, 20 deep
  deep.zeros(64);
  expect_rejected(deep.bytes, "nested deeper");
}

TEST(GgufHostile, TensorInfoRules) {
  auto one_tensor = [](const std::string& name, std::vector<uint64_t> shape, uint32_t type, uint64_t offset) {
    GgufBytes g;
    g.header(1, 0).tensor(name, std::move(shape), type, offset);
    g.pad().zeros(64);
    return g.bytes;
  };
  expect_rejected(one_tensor("t", {8}, 4, 0), "unknown type id 4");
  expect_rejected(one_tensor("t", {8}, 9999, 0), "unknown type id 9999");
  expect_rejected(one_tensor("t", {100}, kQ4K, 0), "not a multiple of the Q4_K block size 256");
  expect_rejected(one_tensor("t", {8}, kF32, 3), "not aligned");
  expect_rejected(one_tensor("t", {8}, kF32, 64), "runs past the end");
  expect_rejected(one_tensor("t", {1, 1, 1, 1, 1}, kF32, 0), "5 dimensions");
  expect_rejected(one_tensor("t", {8, 0}, kF32, 0), "zero-sized");
  expect_rejected(one_tensor("t", {uint64_t{1} << 40, uint64_t{1} << 40}, kF32, 0), "absurd number");
  expect_rejected(one_tensor("", {8}, kF32, 0), "empty tensor name");
  expect_rejected(one_tensor(std::string(80, 'x'), {8}, kF32, 0), "longer than 63");

  GgufBytes overlap;
  overlap.header(2, 0).tensor("a", {16}, kF32, 0).tensor("b", {8}, kF32, 32).pad().zeros(128);
  expect_rejected(overlap.bytes, "overlaps tensor 'a'");
  GgufBytes dup;
  dup.header(2, 0).tensor("a", {8}, kF32, 0).tensor("a", {8}, kF32, 32).pad().zeros(128);
  expect_rejected(dup.bytes, "duplicate tensor name 'a'");
  GgufBytes no_data;
  no_data.header(1, 0).tensor("a", {8}, kF32, 0);
  expect_rejected(no_data.bytes, "ends before its tensor data section");
}

// Every prefix of a valid file (except the whole) must be rejected cleanly.
TEST(GgufHostile, EveryTruncationIsRejected) {
  Writer w;
  w.set("general.architecture", "llama");
  w.set("tokens", make_array<std::string>(ValueType::STRING, {"<s>", "</s>", "a", "b"}));
  w.set("scores", make_array<float>(ValueType::F32, {0.0f, -1.0f, -2.0f, -3.0f}));
  w.add_tensor("w", TensorType::F32, {8, 2});  // 64 bytes: the file ends exactly at its data
  const std::string path = testing::temp_path("truncate-src.gguf");
  w.write(path, [](size_t, uint8_t* out) { std::memset(out, 7, 64); });
  const auto full = testing::read_all(path);
  for (size_t n = 0; n < full.size(); ++n) {
    std::vector<uint8_t> prefix(full.begin(), full.begin() + static_cast<long>(n));
    const std::string p = write_temp("truncated.gguf", prefix);
    EXPECT_THROW(File::open(p), FormatError) << "prefix of " << n << " bytes";
  }
}

// Seeded random mutations of a valid file: each either opens or fails with FormatError.
// A crash, hang or other exception type fails the test (and ASan catches bad reads in the
// sanitizer build of this same test).
TEST(GgufHostile, RandomMutationsNeverCrash) {
  Writer w;
  w.set("general.architecture", "qwen2");
  w.set("qwen2.block_count", Value(uint32_t{2}));
  w.set("tokens", make_array<std::string>(ValueType::STRING, {"a", "bb", "ccc"}));
  Array nested;
  nested.element_type = ValueType::ARRAY;
  nested.items.push_back(make_array<uint8_t>(ValueType::U8, {1, 2, 3}));
  w.set("nested", Value(nested));
  w.add_tensor("x", TensorType::F16, {4, 2});
  w.add_tensor("y", TensorType::Q4_0, {32});
  const std::string src = testing::temp_path("mutate-src.gguf");
  w.write(src, [](size_t, uint8_t* out) { out[0] = 1; });
  const auto base = testing::read_all(src);

  Rng rng(20261122);
  int accepted = 0, rejected = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    auto bytes = base;
    const int n_mut = 1 + static_cast<int>(rng.next_u64() % 4);
    for (int m = 0; m < n_mut; ++m) {
      const size_t at = rng.next_u64() % bytes.size();
      switch (rng.next_u64() % 4) {
        case 0: bytes[at] ^= static_cast<uint8_t>(1u << (rng.next_u64() % 8)); break;
        case 1: bytes[at] = static_cast<uint8_t>(rng.next_u64()); break;
        case 2: bytes[at] = 0xff; break;
        case 3: bytes.resize(at); break;
      }
      if (bytes.empty()) break;
    }
    const std::string p = write_temp("mutated.gguf", bytes);
    try {
      File f = File::open(p);
      for (const auto& t : f.tensors()) ASSERT_LE(t.n_bytes, f.total_bytes());
      ++accepted;
    } catch (const FormatError& e) {
      ASSERT_EQ(std::string(e.what()).find('\n'), std::string::npos);
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 100);
  EXPECT_GT(accepted, 0);  // e.g. flips inside tensor data or padding
}

}  // namespace
}  // namespace tokenmill::gguf
