// The attention memory of one sequence: for every layer, the keys and values of every position
// the sequence has been through. The forward pass sees a cache only through this interface (a
// view of a layer's rows, a place to write new rows, the filled length), so the serving engine
// can swap in a paged store shared between sequences without touching the model code.
#pragma once

#include <cstdint>
#include <memory>

#include "gguf/tensor_type.h"
#include "kernels/attention.h"
#include "model/arch.h"

namespace tokenmill::model {

class SequenceCache {
 public:
  virtual ~SequenceCache() = default;

  virtual int64_t size() const = 0;      // positions stored
  virtual int64_t capacity() const = 0;  // positions it can hold
  // Forget positions n and later (n <= size()), e.g. to start a new text or re-run a suffix.
  virtual void truncate(int64_t n) = 0;

  // For the forward pass: rows for positions [size(), size() + n) are about to be written; throws
  // tokenmill::Error when they do not fit. Then the rows are written through key_row/value_row
  // and the positions made visible with commit(n).
  virtual void reserve(int64_t n) = 0;
  virtual void* key_row(int layer, int64_t pos) = 0;    // n_head_kv * head_dim values
  virtual void* value_row(int layer, int64_t pos) = 0;
  virtual kernels::KvView keys(int layer) const = 0;    // position 0 onwards
  virtual kernels::KvView values(int layer) const = 0;
  virtual void commit(int64_t n) = 0;

  virtual gguf::TensorType type() const = 0;
};

// Throws tokenmill::Error unless `type` can hold this model's K/V rows: F32, F16, or Q8_0 when
// head_dim is a multiple of its 32-value blocks. Every cache implementation checks this.
void check_kv_type(const HParams& hp, gguf::TensorType type);

// Keys and values of each layer in one contiguous buffer of `capacity` positions.
class ContiguousCache final : public SequenceCache {
 public:
  // type: F32, F16 or Q8_0 (Q8_0 needs head_dim to be a multiple of 32).
  ContiguousCache(const HParams& hp, int64_t capacity, gguf::TensorType type = gguf::TensorType::F16);

  int64_t size() const override { return size_; }
  int64_t capacity() const override { return capacity_; }
  void truncate(int64_t n) override;
  void reserve(int64_t n) override;
  void* key_row(int layer, int64_t pos) override { return row(0, layer, pos); }
  void* value_row(int layer, int64_t pos) override { return row(1, layer, pos); }
  kernels::KvView keys(int layer) const override { return view(0, layer); }
  kernels::KvView values(int layer) const override { return view(1, layer); }
  void commit(int64_t n) override;
  gguf::TensorType type() const override { return type_; }

  uint64_t bytes() const { return static_cast<uint64_t>(n_layer_ * 2 * capacity_ * pos_bytes_); }

 private:
  uint8_t* row(int kv, int layer, int64_t pos);
  kernels::KvView view(int kv, int layer) const;

  gguf::TensorType type_;
  int64_t capacity_;
  int64_t n_layer_;
  int64_t head_bytes_;  // one kv head's row
  int64_t pos_bytes_;   // all kv heads of one position
  int64_t size_ = 0;
  // [layer][k or v][position][kv head][head_dim]; left uninitialised, so pages are only
  // touched as positions fill.
  std::unique_ptr<uint8_t[]> data_;
};

}  // namespace tokenmill::model
