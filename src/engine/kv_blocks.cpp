#include "engine/kv_blocks.h"

#include <cstring>
#include <string>

#include "common/error.h"

namespace tokenmill::engine {

int64_t KvBlockPool::block_bytes(const model::HParams& hp, gguf::TensorType type) {
  const auto row = static_cast<int64_t>(gguf::row_bytes(type, hp.head_dim)) * hp.n_head_kv;
  return row * kKvBlockPositions * 2 * hp.n_layer();
}

KvBlockPool::KvBlockPool(const model::HParams& hp, int64_t n_blocks, gguf::TensorType type)
    : type_(type), n_blocks_(n_blocks), n_layer_(hp.n_layer()) {
  model::check_kv_type(hp, type);
  if (n_blocks <= 0 || n_blocks > INT32_MAX) throw Error("KV cache: the budget must hold at least one block");
  head_bytes_ = static_cast<int64_t>(gguf::row_bytes(type, hp.head_dim));
  row_bytes_ = head_bytes_ * hp.n_head_kv;
  page_bytes_ = row_bytes_ * kKvBlockPositions;
  arena_ = std::make_unique_for_overwrite<uint8_t[]>(static_cast<size_t>(n_blocks * block_bytes(hp, type)));
  refs_.assign(n_blocks, 0);
  free_.reserve(n_blocks);
  // Handed out lowest first, so a lightly used pool touches little memory.
  for (int64_t b = n_blocks - 1; b >= 0; --b) free_.push_back(static_cast<BlockId>(b));
}

std::optional<BlockId> KvBlockPool::allocate() {
  if (free_.empty()) return std::nullopt;
  const BlockId b = free_.back();
  free_.pop_back();
  refs_[b] = 1;
  return b;
}

void KvBlockPool::retain(BlockId block) { ++refs_[block]; }

void KvBlockPool::release(BlockId block) {
  if (--refs_[block] == 0) free_.push_back(block);
}

uint8_t* KvBlockPool::page(BlockId block, int layer, int kv) const {
  return arena_.get() + ((static_cast<int64_t>(block) * n_layer_ + layer) * 2 + kv) * page_bytes_;
}

PagedCache::PagedCache(KvBlockPool& pool, int64_t capacity)
    : pool_(pool), capacity_(capacity), pages_(pool.n_layer() * 2) {
  if (capacity <= 0) throw Error("KV cache capacity must be positive");
}

PagedCache::~PagedCache() { clear(); }

void PagedCache::push_block(BlockId block) {
  blocks_.push_back(block);
  for (int64_t i = 0; i < static_cast<int64_t>(pages_.size()); ++i)
    pages_[i].push_back(pool_.page(block, static_cast<int>(i / 2), static_cast<int>(i % 2)));
}

void PagedCache::pop_block() {
  pool_.release(blocks_.back());
  blocks_.pop_back();
  for (auto& table : pages_) table.pop_back();
}

void PagedCache::clear() {
  while (!blocks_.empty()) pop_block();
  size_ = 0;
}

int64_t PagedCache::blocks_needed(int64_t n) const {
  const int64_t want = (size_ + n + kKvBlockPositions - 1) / kKvBlockPositions;
  return std::max<int64_t>(0, want - static_cast<int64_t>(blocks_.size()));
}

bool PagedCache::grow(int64_t n) {
  const int64_t need = blocks_needed(n);
  if (need > pool_.free_blocks()) return false;
  for (int64_t i = 0; i < need; ++i) push_block(*pool_.allocate());
  return true;
}

void PagedCache::adopt(std::span<const BlockId> blocks) {
  if (!blocks_.empty()) throw Error("KV cache: a prefix can only start an empty cache");
  for (BlockId b : blocks) {
    pool_.retain(b);
    push_block(b);
  }
  size_ = static_cast<int64_t>(blocks.size()) * kKvBlockPositions;
}

void PagedCache::truncate(int64_t n) {
  if (n < 0 || n > size_) throw Error("KV cache: cannot truncate to " + std::to_string(n) + " positions");
  size_ = n;
  while (static_cast<int64_t>(blocks_.size()) * kKvBlockPositions >= size_ + kKvBlockPositions) pop_block();
  // The positions from n on will be written again; a block other sequences share is copied
  // first, so their rows stay as they were.
  if (size_ % kKvBlockPositions != 0 && pool_.refs(blocks_.back()) > 1) {
    const auto copy = pool_.allocate();
    if (!copy) throw Error("KV cache: no free block to copy a shared block into");
    for (int layer = 0; layer < pool_.n_layer(); ++layer) {
      for (int kv = 0; kv < 2; ++kv)
        std::memcpy(pool_.page(*copy, layer, kv), pool_.page(blocks_.back(), layer, kv),
                    static_cast<size_t>(pool_.row_bytes() * kKvBlockPositions));
    }
    pop_block();
    push_block(*copy);
  }
}

void PagedCache::reserve(int64_t n) {
  if (n < 0 || size_ + n > capacity_)
    throw Error("context is full: " + std::to_string(size_) + " positions stored, " + std::to_string(n) +
                " more do not fit in " + std::to_string(capacity_));
  if (!grow(n)) throw Error("KV cache: out of blocks for " + std::to_string(n) + " more positions");
}

void PagedCache::commit(int64_t n) {
  if (n < 0 || size_ + n > static_cast<int64_t>(blocks_.size()) * kKvBlockPositions)
    throw Error("KV cache: commit of " + std::to_string(n) + " positions that were not reserved");
  size_ += n;
}

uint8_t* PagedCache::row(int layer, int kv, int64_t pos) {
  return pool_.page(blocks_[pos / kKvBlockPositions], layer, kv) + pos % kKvBlockPositions * pool_.row_bytes();
}

kernels::KvView PagedCache::view(int layer, int kv) const {
  kernels::KvView v;
  v.type = pool_.type();
  v.pos_stride = pool_.row_bytes();
  v.head_stride = pool_.head_bytes();
  v.pages = pages_[layer * 2 + kv].data();
  v.page_positions = kKvBlockPositions;
  return v;
}

}  // namespace tokenmill::engine
