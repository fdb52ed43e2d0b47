#include "model/kv_cache.h"

#include <string>

#include "common/error.h"

namespace tokenmill::model {

void check_kv_type(const HParams& hp, gguf::TensorType type) {
  using gguf::TensorType;
  if (type != TensorType::F32 && type != TensorType::F16 && type != TensorType::Q8_0)
    throw Error("KV cache type must be F32, F16 or Q8_0, not " + std::string(gguf::tensor_type_name(type)));
  const auto block = gguf::tensor_type_info(type).block_elements;
  if (hp.head_dim % block != 0)
    throw Error("a " + std::string(gguf::tensor_type_name(type)) + " KV cache needs the head size (" +
                std::to_string(hp.head_dim) + ") to be a multiple of " + std::to_string(block));
}

ContiguousCache::ContiguousCache(const HParams& hp, int64_t capacity, gguf::TensorType type)
    : type_(type), capacity_(capacity), n_layer_(hp.n_layer()) {
  check_kv_type(hp, type);
  if (capacity <= 0) throw Error("KV cache capacity must be positive");
  head_bytes_ = static_cast<int64_t>(gguf::row_bytes(type, hp.head_dim));
  pos_bytes_ = head_bytes_ * hp.n_head_kv;
  data_ = std::make_unique_for_overwrite<uint8_t[]>(bytes());
}

void ContiguousCache::truncate(int64_t n) {
  if (n < 0 || n > size_) throw Error("KV cache: cannot truncate to " + std::to_string(n) + " positions");
  size_ = n;
}

void ContiguousCache::reserve(int64_t n) {
  if (n < 0 || size_ + n > capacity_)
    throw Error("context is full: " + std::to_string(size_) + " positions stored, " + std::to_string(n) +
                " more do not fit in " + std::to_string(capacity_));
}

void ContiguousCache::commit(int64_t n) {
  reserve(n);
  size_ += n;
}

uint8_t* ContiguousCache::row(int kv, int layer, int64_t pos) {
  return data_.get() + ((layer * 2 + kv) * capacity_ + pos) * pos_bytes_;
}

kernels::KvView ContiguousCache::view(int kv, int layer) const {
  return kernels::KvView{type_, data_.get() + (layer * 2 + kv) * capacity_ * pos_bytes_, pos_bytes_, head_bytes_};
}

}  // namespace tokenmill::model
