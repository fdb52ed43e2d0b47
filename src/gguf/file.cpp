#include "gguf/file.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <optional>
#include <set>
#include <sstream>
#include <string_view>

namespace tokenmill::gguf {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr uint32_t kMaxDims = 4;
constexpr size_t kMaxTensorName = 63;    // readers keep names in 64-byte buffers
constexpr int kMaxArrayDepth = 8;        // real files nest at most twice; deeper is hostile
constexpr uint64_t kMaxElements = uint64_t{1} << 60;
// A parsed array element costs ~40 bytes in memory; capping the length keeps a hostile file's
// memory use proportional to what real files need (vocabularies hold ~260k entries).
constexpr uint64_t kMaxArrayLength = uint64_t{1} << 24;

// Smallest encoded size of one value of each type, used to bound counts by the bytes left
// before anything is allocated: a hostile count can never make us reserve more than the file.
uint64_t min_encoded_size(ValueType t) {
  switch (t) {
    case ValueType::U8: case ValueType::I8: case ValueType::BOOL: return 1;
    case ValueType::U16: case ValueType::I16: return 2;
    case ValueType::U32: case ValueType::I32: case ValueType::F32: return 4;
    case ValueType::U64: case ValueType::I64: case ValueType::F64: return 8;
    case ValueType::STRING: return 8;      // length prefix
    case ValueType::ARRAY: return 4 + 8;   // element type + count
  }
  return 1;
}

bool is_known_value_type(uint32_t t) { return t <= static_cast<uint32_t>(ValueType::F64); }

std::string shard_path(const std::string& prefix, uint32_t index, uint32_t count) {
  char suffix[64];
  std::snprintf(suffix, sizeof suffix, "-%05u-of-%05u.gguf", index, count);
  return prefix + suffix;
}

// A path named as shard INDEX of COUNT: STEM-0000I-of-0000N.gguf (five digits each).
struct ShardName {
  std::string stem;
  uint32_t index, count;
};
std::optional<ShardName> parse_shard_name(const std::string& path) {
  constexpr std::string_view kOf = "-of-", kExtension = ".gguf";
  constexpr size_t kSuffix = 1 + 5 + kOf.size() + 5 + kExtension.size();  // "-00001-of-00002.gguf"
  if (path.size() < kSuffix) return std::nullopt;
  const std::string_view suffix = std::string_view(path).substr(path.size() - kSuffix);
  auto digits = [](std::string_view d) {
    return std::all_of(d.begin(), d.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  const std::string_view index = suffix.substr(1, 5), count = suffix.substr(6 + kOf.size(), 5);
  if (suffix[0] != '-' || suffix.substr(6, kOf.size()) != kOf || suffix.substr(kSuffix - kExtension.size()) != kExtension ||
      !digits(index) || !digits(count))
    return std::nullopt;
  return ShardName{path.substr(0, path.size() - kSuffix), static_cast<uint32_t>(std::stoul(std::string(index))),
                   static_cast<uint32_t>(std::stoul(std::string(count)))};
}

}  // namespace

// Reads one shard. Every read is bounds-checked; every failure names file and offset.
class Parser {
 public:
  Parser(const MappedFile& file) : file_(file), data_(file.data()), size_(file.size()) {}

  [[noreturn]] void fail(uint64_t at, const std::string& what) const {
    std::ostringstream os;
    os << file_.path() << ": offset " << at << ": " << what;
    throw FormatError(os.str());
  }

  template <typename T>
  T read_scalar() {
    if (size_ - pos_ < sizeof(T)) fail(pos_, "unexpected end of file");
    T x;
    std::memcpy(&x, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return x;
  }

  std::string read_string(const char* what) {
    const uint64_t at = pos_;
    const uint64_t len = read_scalar<uint64_t>();
    if (len > size_ - pos_)
      fail(at, std::string(what) + " length " + std::to_string(len) + " runs past the end of the file");
    std::string s(reinterpret_cast<const char*>(data_ + pos_), len);
    pos_ += len;
    return s;
  }

  Value read_value(ValueType type, int depth) {
    switch (type) {
      case ValueType::U8: return read_scalar<uint8_t>();
      case ValueType::I8: return read_scalar<int8_t>();
      case ValueType::U16: return read_scalar<uint16_t>();
      case ValueType::I16: return read_scalar<int16_t>();
      case ValueType::U32: return read_scalar<uint32_t>();
      case ValueType::I32: return read_scalar<int32_t>();
      case ValueType::F32: return read_scalar<float>();
      case ValueType::U64: return read_scalar<uint64_t>();
      case ValueType::I64: return read_scalar<int64_t>();
      case ValueType::F64: return read_scalar<double>();
      case ValueType::BOOL: {
        const uint64_t at = pos_;
        const uint8_t b = read_scalar<uint8_t>();
        if (b > 1) fail(at, "bool value " + std::to_string(b) + " is neither 0 nor 1");
        return b == 1;
      }
      case ValueType::STRING: return read_string("string");
      case ValueType::ARRAY: return read_array(depth + 1);
    }
    fail(pos_, "unknown value type");
  }

  Value read_array(int depth) {
    const uint64_t at = pos_;
    if (depth > kMaxArrayDepth) fail(at, "arrays nested deeper than " + std::to_string(kMaxArrayDepth));
    const uint32_t raw_type = read_scalar<uint32_t>();
    if (!is_known_value_type(raw_type)) fail(at, "unknown array element type " + std::to_string(raw_type));
    const auto elem = static_cast<ValueType>(raw_type);
    const uint64_t count = read_scalar<uint64_t>();
    if (count > (size_ - pos_) / min_encoded_size(elem))
      fail(at, "array of " + std::to_string(count) + " " + std::string(value_type_name(elem)) +
                   " elements cannot fit in the " + std::to_string(size_ - pos_) + " bytes left");
    if (count > kMaxArrayLength)
      fail(at, "array of " + std::to_string(count) + " elements exceeds the limit of " +
                   std::to_string(kMaxArrayLength));
    Array a;
    a.element_type = elem;
    a.items.reserve(count);
    for (uint64_t i = 0; i < count; ++i) a.items.push_back(read_value(elem, depth));
    return a;
  }

  // Parses header, metadata and tensor infos into `out` (metadata only when `keep_metadata`).
  void parse(File& out, uint32_t shard, bool keep_metadata) {
    if (size_ < 24) fail(0, "file is too small to be GGUF (" + std::to_string(size_) + " bytes)");
    const uint32_t magic = read_scalar<uint32_t>();
    if (magic != kMagic) fail(0, "not a GGUF file (bad magic)");
    const uint32_t version = read_scalar<uint32_t>();
    if (version == 0x03000000u || version == 0x02000000u) fail(4, "big-endian GGUF is not supported");
    if (version == 1) fail(4, "GGUF version 1 is not supported (convert the file to version 3)");
    if (version != 2 && version != 3) fail(4, "unsupported GGUF version " + std::to_string(version));
    out.version_ = version;

    const uint64_t n_tensors = read_scalar<uint64_t>();
    const uint64_t n_kv = read_scalar<uint64_t>();
    constexpr uint64_t kMinTensorInfo = 8 + 4 + 4 + 8;  // name length, n_dims, type, offset
    constexpr uint64_t kMinKv = 8 + 4 + 1;               // key length, type, smallest value
    if (n_tensors > (size_ - pos_) / kMinTensorInfo)
      fail(8, "tensor count " + std::to_string(n_tensors) + " cannot fit in a file of " +
                  std::to_string(size_) + " bytes");
    if (n_kv > (size_ - pos_) / kMinKv)
      fail(16, "metadata count " + std::to_string(n_kv) + " cannot fit in a file of " +
                   std::to_string(size_) + " bytes");

    std::set<std::string, std::less<>> keys;
    for (uint64_t i = 0; i < n_kv; ++i) {
      const uint64_t at = pos_;
      std::string key = read_string("key");
      if (key.empty()) fail(at, "empty metadata key");
      if (!keys.insert(key).second) fail(at, "duplicate metadata key '" + key + "'");
      const uint64_t type_at = pos_;
      const uint32_t raw_type = read_scalar<uint32_t>();
      if (!is_known_value_type(raw_type))
        fail(type_at, "key '" + key + "' has unknown value type " + std::to_string(raw_type));
      Value v = read_value(static_cast<ValueType>(raw_type), 0);
      if (key == "general.alignment") {
        const uint32_t* a = std::get_if<uint32_t>(&v.v);
        if (a == nullptr) fail(type_at, "general.alignment must be a u32");
        if (*a == 0 || (*a & (*a - 1)) != 0)
          fail(type_at, "general.alignment " + std::to_string(*a) + " is not a power of two");
        alignment_ = *a;
      }
      if (keep_metadata) {
        out.metadata_index_[key] = out.metadata_.size();
        out.metadata_.push_back({std::move(key), std::move(v)});
      } else {
        shard_metadata_.push_back({std::move(key), std::move(v)});
      }
    }

    std::vector<TensorInfo> infos;
    infos.reserve(n_tensors);
    std::vector<uint64_t> info_offsets;
    for (uint64_t i = 0; i < n_tensors; ++i) {
      const uint64_t at = pos_;
      info_offsets.push_back(at);
      TensorInfo t;
      t.name = read_string("tensor name");
      if (t.name.empty()) fail(at, "empty tensor name");
      if (t.name.size() > kMaxTensorName)
        fail(at, "tensor name '" + t.name.substr(0, 32) + "...' is longer than " +
                     std::to_string(kMaxTensorName) + " bytes");
      const uint32_t n_dims = read_scalar<uint32_t>();
      if (n_dims == 0 || n_dims > kMaxDims)
        fail(at, "tensor '" + t.name + "' has " + std::to_string(n_dims) + " dimensions (1 to 4 allowed)");
      uint64_t n_elements = 1;
      for (uint32_t d = 0; d < n_dims; ++d) {
        const uint64_t ne = read_scalar<uint64_t>();
        if (ne == 0) fail(at, "tensor '" + t.name + "' has a zero-sized dimension");
        if (ne > kMaxElements || n_elements > kMaxElements / ne)
          fail(at, "tensor '" + t.name + "' has an absurd number of elements");
        n_elements *= ne;
        t.shape.push_back(ne);
      }
      const uint64_t type_at = pos_;
      const uint32_t raw_type = read_scalar<uint32_t>();
      const auto info = tensor_type_info(raw_type);
      if (!info)
        fail(type_at, "tensor '" + t.name + "' has unknown type id " + std::to_string(raw_type));
      t.type = info->type;
      if (t.shape[0] % info->block_elements != 0)
        fail(at, "tensor '" + t.name + "': row length " + std::to_string(t.shape[0]) +
                     " is not a multiple of the " + std::string(info->name) + " block size " +
                     std::to_string(info->block_elements));
      t.n_bytes = n_elements / info->block_elements * info->block_bytes;
      t.offset = read_scalar<uint64_t>();
      if (t.offset % alignment_ != 0)
        fail(at, "tensor '" + t.name + "' data offset " + std::to_string(t.offset) +
                     " is not aligned to " + std::to_string(alignment_));
      t.shard = shard;
      infos.push_back(std::move(t));
    }

    // The data section starts at the next multiple of the alignment.
    const uint64_t data_start = (pos_ + alignment_ - 1) / alignment_ * alignment_;
    if (!infos.empty() && data_start > size_) fail(pos_, "file ends before its tensor data section");
    const uint64_t data_size = infos.empty() ? 0 : size_ - data_start;
    for (size_t i = 0; i < infos.size(); ++i) {
      auto& t = infos[i];
      if (t.offset > data_size || t.n_bytes > data_size - t.offset)
        fail(info_offsets[i], "tensor '" + t.name + "' data (" + std::to_string(t.n_bytes) +
                                  " bytes at data offset " + std::to_string(t.offset) +
                                  ") runs past the end of the file");
      t.data = data_ + data_start + t.offset;
    }
    std::vector<size_t> order(infos.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return infos[a].offset < infos[b].offset; });
    for (size_t k = 1; k < order.size(); ++k) {
      const auto& prev = infos[order[k - 1]];
      const auto& cur = infos[order[k]];
      if (prev.offset + prev.n_bytes > cur.offset)
        fail(info_offsets[order[k]], "tensor '" + cur.name + "' overlaps tensor '" + prev.name + "'");
    }
    for (size_t i = 0; i < infos.size(); ++i) {
      auto& t = infos[i];
      if (out.tensor_index_.count(t.name) != 0)
        fail(info_offsets[i], "duplicate tensor name '" + t.name + "'");
      out.tensor_index_[t.name] = out.tensors_.size();
      out.tensors_.push_back(std::move(t));
    }
    out.alignment_ = alignment_;
  }

  // Metadata of a non-first shard, for split-consistency checks.
  const Value* shard_value(const std::string& key) const {
    for (const auto& e : shard_metadata_)
      if (e.key == key) return &e.value;
    return nullptr;
  }

 private:
  const MappedFile& file_;
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
  uint64_t alignment_ = 32;
  std::vector<MetadataEntry> shard_metadata_;
};

uint64_t TensorInfo::n_elements() const {
  uint64_t n = 1;
  for (uint64_t d : shape) n *= d;
  return n;
}

File File::open(const std::string& path) {
  File f;
  f.path_ = path;
  f.shards_.push_back(std::make_unique<MappedFile>(path));
  Parser first(*f.shards_[0]);
  first.parse(f, 0, /*keep_metadata=*/true);

  const auto count = f.get_uint("split.count");
  const std::optional<ShardName> name = parse_shard_name(path);
  if (!count || *count <= 1) {
    if (name && name->count > 1 && !count)
      throw FormatError(path + ": named as a split shard but has no split.count metadata");
    return f;
  }
  if (!name)
    throw FormatError(path + ": split model (split.count " + std::to_string(*count) +
                      ") but the file name is not NAME-0000K-of-0000N.gguf");
  if (name->index != 1 || name->count != *count || f.get_uint("split.no").value_or(0) != 0)
    throw FormatError(path + ": open the first shard of a split model (NAME-00001-of-" +
                      path.substr(path.size() - 10, 5) + ".gguf)");
  if (*count > 9999) throw FormatError(path + ": absurd split.count " + std::to_string(*count));
  for (uint32_t k = 1; k < *count; ++k) {
    const std::string shard = shard_path(name->stem, k + 1, static_cast<uint32_t>(*count));
    f.shards_.push_back(std::make_unique<MappedFile>(shard));
    Parser p(*f.shards_.back());
    p.parse(f, k, /*keep_metadata=*/false);
    const Value* no = p.shard_value("split.no");
    if (no == nullptr || no->as_uint() != k)
      throw FormatError(shard + ": split.no does not say this is shard " + std::to_string(k + 1));
  }
  if (const auto expected = f.get_uint("split.tensors.count"); expected && *expected != f.tensors_.size())
    throw FormatError(path + ": split.tensors.count says " + std::to_string(*expected) +
                      " tensors but the shards hold " + std::to_string(f.tensors_.size()));
  return f;
}

uint64_t File::total_bytes() const {
  uint64_t n = 0;
  for (const auto& s : shards_) n += s->size();
  return n;
}

const Value* File::find(const std::string& key) const {
  auto it = metadata_index_.find(key);
  return it == metadata_index_.end() ? nullptr : &metadata_[it->second].value;
}

namespace {
[[noreturn]] void bad_type(const std::string& path, const std::string& key, const Value& v, const char* want) {
  throw FormatError(path + ": metadata '" + key + "' is " + std::string(value_type_name(v.type())) +
                    ", expected " + want);
}
}  // namespace

std::optional<uint64_t> File::get_uint(const std::string& key) const {
  const Value* v = find(key);
  if (v == nullptr) return std::nullopt;
  auto x = v->as_uint();
  if (!x) bad_type(path_, key, *v, "a non-negative integer");
  return x;
}

std::optional<double> File::get_float(const std::string& key) const {
  const Value* v = find(key);
  if (v == nullptr) return std::nullopt;
  auto x = v->as_float();
  if (!x) bad_type(path_, key, *v, "a number");
  return x;
}

std::optional<bool> File::get_bool(const std::string& key) const {
  const Value* v = find(key);
  if (v == nullptr) return std::nullopt;
  auto x = v->as_bool();
  if (!x) bad_type(path_, key, *v, "a bool");
  return x;
}

std::optional<std::string> File::get_string(const std::string& key) const {
  const Value* v = find(key);
  if (v == nullptr) return std::nullopt;
  const std::string* s = v->as_string();
  if (s == nullptr) bad_type(path_, key, *v, "a string");
  return *s;
}

const Array* File::get_array(const std::string& key) const {
  const Value* v = find(key);
  if (v == nullptr) return nullptr;
  const Array* a = v->as_array();
  if (a == nullptr) bad_type(path_, key, *v, "an array");
  return a;
}

std::string File::architecture() const {
  auto arch = get_string("general.architecture");
  if (!arch || arch->empty()) throw FormatError(path_ + ": missing general.architecture");
  return *arch;
}

const TensorInfo* File::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace tokenmill::gguf
