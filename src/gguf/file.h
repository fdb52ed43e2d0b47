// Reading GGUF files. A gguf::File is one logical model: a single .gguf, or all the shards of a
// split model (NAME-00001-of-0000N.gguf) opened from the first. Everything is validated when the
// file is opened, so the rest of the program can trust sizes and offsets; a malformed file gives
// one gguf::FormatError naming the file, the byte offset and what is wrong.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/mapped_file.h"
#include "gguf/tensor_type.h"
#include "gguf/value.h"

namespace tokenmill::gguf {

class FormatError : public Error {
 public:
  using Error::Error;
};

struct TensorInfo {
  std::string name;
  TensorType type = TensorType::F32;
  std::vector<uint64_t> shape;  // ne[0] first: shape[0] is the contiguous (row) dimension
  uint64_t offset = 0;          // relative to the start of its shard's data section
  uint64_t n_bytes = 0;
  uint32_t shard = 0;            // which file of a split model holds the data
  const uint8_t* data = nullptr; // into the memory mapping

  uint64_t n_elements() const;
  uint64_t n_rows() const { return n_elements() / shape.at(0); }
};

struct MetadataEntry {
  std::string key;
  Value value;
};

class File {
 public:
  // Opens and validates. For a split model pass the first shard; the others are found by name.
  static File open(const std::string& path);

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t total_bytes() const;  // all shards

  // Metadata in file order (the first shard's, for split models).
  const std::vector<MetadataEntry>& metadata() const { return metadata_; }
  const Value* find(const std::string& key) const;
  bool has(const std::string& key) const { return find(key) != nullptr; }

  // Typed getters: nullopt when absent; FormatError when present with an unusable type.
  std::optional<uint64_t> get_uint(const std::string& key) const;
  std::optional<double> get_float(const std::string& key) const;
  std::optional<bool> get_bool(const std::string& key) const;
  std::optional<std::string> get_string(const std::string& key) const;
  const Array* get_array(const std::string& key) const;

  // "general.architecture", required for models; FormatError when missing.
  std::string architecture() const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(const std::string& name) const;

 private:
  std::string path_;
  uint32_t version_ = 3;
  uint64_t alignment_ = 32;
  std::vector<std::unique_ptr<MappedFile>> shards_;
  std::vector<MetadataEntry> metadata_;
  std::map<std::string, size_t, std::less<>> metadata_index_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;

  friend class Parser;
};

}  // namespace tokenmill::gguf
