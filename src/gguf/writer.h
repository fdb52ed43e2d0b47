// Writing GGUF v3 files that any conforming reader (llama.cpp included) loads. Metadata keeps
// insertion order; tensor data is produced one tensor at a time by a callback, so writing a
// multi-gigabyte model needs memory for one tensor only.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "gguf/tensor_type.h"
#include "gguf/value.h"

namespace tokenmill::gguf {

class Writer {
 public:
  explicit Writer(uint32_t alignment = 32);

  // Replaces an existing key's value in place (keeping its position).
  void set(const std::string& key, Value value);
  // Declares a tensor; its bytes come from the fill callback given to write().
  void add_tensor(const std::string& name, TensorType type, std::vector<uint64_t> shape);

  struct PlannedTensor {
    std::string name;
    TensorType type;
    std::vector<uint64_t> shape;
    uint64_t n_bytes;
  };
  const std::vector<PlannedTensor>& tensors() const { return tensors_; }

  // fill(index, out): writes exactly tensors()[index].n_bytes bytes into out.
  using FillFn = std::function<void(size_t index, uint8_t* out)>;
  // Writes to path via a temporary file of this writer's own, renamed into place, so a crash
  // never leaves a truncated model under the final name and concurrent writers never mix. Throws tokenmill::Error on I/O failure.
  void write(const std::string& path, const FillFn& fill) const;

 private:
  uint32_t alignment_;
  std::vector<std::pair<std::string, Value>> metadata_;
  std::vector<PlannedTensor> tensors_;
};

}  // namespace tokenmill::gguf
