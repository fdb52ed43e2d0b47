// Round trips through our writer and reader, split files, and a real model from ../shared.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "gguf/file.h"
#include "gguf/writer.h"
#include "gguf_bytes.h"

namespace tokenmill::gguf {
namespace {

using testing::read_all;
using testing::temp_path;

TEST(GgufWriter, RoundTripsEveryValueTypeAndTensor) {
  Writer w;
  w.set("general.architecture", "llama");
  w.set("t.u8", Value(uint8_t{200}));
  w.set("t.i8", Value(int8_t{-5}));
  w.set("t.u16", Value(uint16_t{60000}));
  w.set("t.i16", Value(int16_t{-30000}));
  w.set("t.u32", Value(uint32_t{4000000000u}));
  w.set("t.i32", Value(int32_t{-2000000000}));
  w.set("t.f32", Value(1.5f));
  w.set("t.bool", Value(true));
  w.set("t.string", "héllo\n");
  w.set("t.u64", Value(uint64_t{1} << 60));
  w.set("t.i64", Value(int64_t{-(int64_t{1} << 60)}));
  w.set("t.f64", Value(2.25));
  w.set("t.strings", make_array<std::string>(ValueType::STRING, {"a", "", "ccc"}));
  Array outer;
  outer.element_type = ValueType::ARRAY;
  outer.items.push_back(make_array<int32_t>(ValueType::I32, {1, 2}));
  outer.items.push_back(make_array<int32_t>(ValueType::I32, {}));
  w.set("t.nested", Value(outer));
  w.set("t.u32", Value(uint32_t{7}));  // replacing keeps the original position

  w.add_tensor("a", TensorType::F32, {3, 2});
  w.add_tensor("b", TensorType::Q8_0, {64, 1, 1, 2});
  w.add_tensor("c", TensorType::F16, {5});
  const std::string path = temp_path("roundtrip.gguf");
  w.write(path, [&](size_t i, uint8_t* out) {
    for (uint64_t k = 0; k < w.tensors()[i].n_bytes; ++k) out[k] = static_cast<uint8_t>(i * 31 + k);
  });

  const File f = File::open(path);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.architecture(), "llama");
  ASSERT_EQ(f.metadata().size(), 15u);
  EXPECT_EQ(f.metadata()[5].key, "t.u32");
  EXPECT_EQ(f.get_uint("t.u32"), 7u);
  EXPECT_EQ(f.get_uint("t.u8"), 200u);
  EXPECT_EQ(f.find("t.i8")->as_int(), -5);
  EXPECT_EQ(f.find("t.i16")->as_int(), -30000);
  EXPECT_EQ(f.find("t.i32")->as_int(), -2000000000);
  EXPECT_EQ(f.get_uint("t.u64"), uint64_t{1} << 60);
  EXPECT_EQ(f.find("t.i64")->as_int(), -(int64_t{1} << 60));
  EXPECT_EQ(f.get_float("t.f32"), 1.5);
  EXPECT_EQ(f.get_float("t.f64"), 2.25);
  EXPECT_EQ(f.get_bool("t.bool"), true);
  EXPECT_EQ(f.get_string("t.string"), "héllo\n");
  const Array* strings = f.get_array("t.strings");
  ASSERT_NE(strings, nullptr);
  ASSERT_EQ(strings->items.size(), 3u);
  EXPECT_EQ(*strings->items[2].as_string(), "ccc");
  const Array* nested = f.get_array("t.nested");
  ASSERT_NE(nested, nullptr);
  ASSERT_EQ(nested->items.size(), 2u);
  EXPECT_EQ(nested->items[0].as_array()->items[1].as_int(), 2);
  EXPECT_TRUE(nested->items[1].as_array()->items.empty());
  EXPECT_THROW(f.get_string("t.u8"), FormatError);  // present with the wrong type
  EXPECT_FALSE(f.get_uint("missing").has_value());

  ASSERT_EQ(f.tensors().size(), 3u);
  const TensorInfo* b = f.find_tensor("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->type, TensorType::Q8_0);
  EXPECT_EQ(b->shape, (std::vector<uint64_t>{64, 1, 1, 2}));
  EXPECT_EQ(b->n_bytes, 4u * 34u);
  EXPECT_EQ(b->offset % 32, 0u);
  for (uint64_t k = 0; k < b->n_bytes; ++k) ASSERT_EQ(b->data[k], static_cast<uint8_t>(31 + k));
  EXPECT_EQ(f.find_tensor("c")->n_bytes, 10u);
  for (const auto& e : std::filesystem::directory_iterator(std::filesystem::path(path).parent_path()))
    EXPECT_EQ(e.path().string().find("roundtrip.gguf.partial"), std::string::npos) << e.path();
}

TEST(GgufWriter, CustomAlignmentIsWrittenAndHonoured) {
  Writer w(64);
  w.add_tensor("x", TensorType::F32, {3});
  w.add_tensor("y", TensorType::F32, {5});
  const std::string path = temp_path("align64.gguf");
  w.write(path, [](size_t, uint8_t* out) { std::memset(out, 1, 4); });
  const File f = File::open(path);
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.get_uint("general.alignment"), 64u);
  EXPECT_EQ(f.find_tensor("y")->offset, 64u);
}

TEST(GgufWriter, SameInputsGiveIdenticalBytes) {
  auto make = [](const std::string& path) {
    Writer w;
    w.set("k", "v");
    w.add_tensor("t", TensorType::Q4_0, {64, 3});
    w.write(path, [](size_t, uint8_t* out) { std::memset(out, 0x5a, 3 * 2 * 18); });
  };
  make(temp_path("det1.gguf"));
  make(temp_path("det2.gguf"));
  EXPECT_EQ(read_all(temp_path("det1.gguf")), read_all(temp_path("det2.gguf")));
}

TEST(GgufWriter, RejectsBadTensorDeclarations) {
  Writer w;
  EXPECT_THROW(w.add_tensor("q", TensorType::Q4_K, {100}), Error);  // not a multiple of 256
  EXPECT_THROW(w.add_tensor("", TensorType::F32, {1}), Error);
  EXPECT_THROW(w.add_tensor(std::string(64, 'n'), TensorType::F32, {1}), Error);
  EXPECT_THROW(w.add_tensor("d", TensorType::F32, {1, 1, 1, 1, 1}), Error);
  w.add_tensor("ok", TensorType::F32, {1});
  EXPECT_THROW(w.add_tensor("ok", TensorType::F32, {1}), Error);
  EXPECT_THROW(Writer(48), Error);
}

void write_shard(const std::string& path, uint16_t no, uint16_t count, int32_t total_tensors,
                 const std::string& tensor, float value) {
  Writer w;
  if (no == 0) w.set("general.architecture", "llama");
  w.set("split.no", Value(no));
  w.set("split.count", Value(count));
  w.set("split.tensors.count", Value(total_tensors));
  w.add_tensor(tensor, TensorType::F32, {4});
  w.write(path, [&](size_t, uint8_t* out) {
    for (int i = 0; i < 4; ++i) std::memcpy(out + 4 * i, &value, 4);
  });
}

TEST(GgufReader, OpensSplitModelsFromTheFirstShard) {
  const std::string prefix = temp_path("split");
  write_shard(prefix + "-00001-of-00003.gguf", 0, 3, 3, "t0", 1.0f);
  write_shard(prefix + "-00002-of-00003.gguf", 1, 3, 3, "t1", 2.0f);
  write_shard(prefix + "-00003-of-00003.gguf", 2, 3, 3, "t2", 3.0f);
  const File f = File::open(prefix + "-00001-of-00003.gguf");
  ASSERT_EQ(f.tensors().size(), 3u);
  for (int i = 0; i < 3; ++i) {
    const TensorInfo* t = f.find_tensor("t" + std::to_string(i));
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->shard, static_cast<uint32_t>(i));
    float x;
    std::memcpy(&x, t->data + 12, 4);
    EXPECT_EQ(x, static_cast<float>(i + 1));
  }
  EXPECT_THROW(File::open(prefix + "-00002-of-00003.gguf"), FormatError);

  std::filesystem::remove(prefix + "-00003-of-00003.gguf");
  EXPECT_THROW(File::open(prefix + "-00001-of-00003.gguf"), Error);
}

// The shard name and the split metadata must agree: a split file under a plain name, a plain
// file under a shard name, and names that only look like shard names.
TEST(GgufReader, ShardNamesAndSplitMetadataMustAgree) {
  const std::string prefix = temp_path("names");
  write_shard(prefix + ".gguf", 0, 2, 2, "t0", 1.0f);
  EXPECT_THROW(File::open(prefix + ".gguf"), FormatError);  // split.count 2, plain name
  Writer plain;
  plain.set("general.architecture", "llama");
  plain.add_tensor("t", TensorType::F32, {4});
  auto zeros = [](size_t, uint8_t* out) { std::memset(out, 0, 16); };
  plain.write(prefix + "-00001-of-00002.gguf", zeros);
  EXPECT_THROW(File::open(prefix + "-00001-of-00002.gguf"), FormatError);  // no split.count
  for (const char* looks_like : {"-0001-of-00002.gguf", "-00001-of-0002x.gguf", "_00001-of-00002.gguf",
                                 "-00001-to-00002.gguf", "-00001-of-00001.gguf"}) {
    plain.write(prefix + looks_like, zeros);
    EXPECT_NO_THROW(File::open(prefix + looks_like)) << looks_like;
    std::filesystem::remove(prefix + looks_like);
  }
  std::filesystem::remove(prefix + ".gguf");
  std::filesystem::remove(prefix + "-00001-of-00002.gguf");
}

TEST(GgufReader, SplitTensorCountMismatchIsAnError) {
  const std::string prefix = temp_path("badsplit");
  write_shard(prefix + "-00001-of-00002.gguf", 0, 2, 5, "t0", 1.0f);
  write_shard(prefix + "-00002-of-00002.gguf", 1, 2, 5, "t1", 2.0f);
  try {
    File::open(prefix + "-00001-of-00002.gguf");
    FAIL() << "expected an error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("split.tensors.count"), std::string::npos) << e.what();
  }
}

TEST(GgufReader, ReadsTheRealStoriesModel) {
  const std::string path = std::string(TOKENMILL_SOURCE_DIR) + "/../shared/models/stories260K-q8_0.gguf";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "../shared/models is absent: " << path;
  const File f = File::open(path);
  EXPECT_EQ(f.architecture(), "llama");
  EXPECT_EQ(f.get_uint("llama.embedding_length"), 64u);
  EXPECT_EQ(f.get_uint("llama.block_count"), 5u);
  EXPECT_EQ(f.get_string("tokenizer.ggml.model"), "llama");
  EXPECT_EQ(f.get_array("tokenizer.ggml.tokens")->items.size(), 512u);
  const TensorInfo* q = f.find_tensor("blk.0.attn_q.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->type, TensorType::Q8_0);
  EXPECT_EQ(q->shape, (std::vector<uint64_t>{64, 64}));
  uint64_t sum = 0;
  for (const auto& t : f.tensors()) sum += t.n_bytes;
  EXPECT_LE(sum, f.total_bytes());
}

TEST(TensorTypes, TableMatchesTheFormatSpecification) {
  EXPECT_EQ(tensor_type_info(TensorType::Q4_K).block_bytes, 144u);
  EXPECT_EQ(tensor_type_info(TensorType::Q6_K).block_bytes, 210u);
  EXPECT_EQ(tensor_type_info(TensorType::IQ4_XS).block_bytes, 136u);
  EXPECT_EQ(row_bytes(TensorType::Q8_0, 64), 68u);
  EXPECT_FALSE(tensor_type_info(4).has_value());   // Q4_2: removed from the format
  EXPECT_FALSE(tensor_type_info(31).has_value());  // repacked types never appear in files
  EXPECT_EQ(tensor_type_from_name("q4_k"), TensorType::Q4_K);
  EXPECT_FALSE(tensor_type_from_name("Q4_K_M").has_value());
}

}  // namespace
}  // namespace tokenmill::gguf
