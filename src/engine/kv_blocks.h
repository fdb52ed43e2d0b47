// The paged KV cache. One arena per model, fixed at start by a memory budget, is cut into
// blocks of kKvBlockPositions positions (every layer's keys and values of those positions).
// Sequences take blocks as they grow and give them back when they end, so any mix of short and
// long sequences shares one bound; a full block can be shared by several sequences with the
// same prompt prefix (reference counts, see prefix_cache.h). The attention kernel reads a
// sequence's rows through its block table (kernels::KvView::pages).
//
// Not thread-safe: a pool and its caches belong to one scheduler thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "gguf/tensor_type.h"
#include "model/arch.h"
#include "model/kv_cache.h"

namespace tokenmill::engine {

// A multiple of the attention kernel's key block (32), so a streamed key block never straddles
// two pages; small enough that a prefix hit wastes little of a prompt.
constexpr int64_t kKvBlockPositions = 32;

using BlockId = int32_t;

class KvBlockPool {
 public:
  KvBlockPool(const model::HParams& hp, int64_t n_blocks, gguf::TensorType type);

  // Bytes one block takes for this model and cache type.
  static int64_t block_bytes(const model::HParams& hp, gguf::TensorType type);

  gguf::TensorType type() const { return type_; }
  int64_t n_blocks() const { return n_blocks_; }
  int64_t free_blocks() const { return static_cast<int64_t>(free_.size()); }

  std::optional<BlockId> allocate();  // a block with one reference; nullopt when none is free
  void retain(BlockId block);
  void release(BlockId block);        // the last release returns the block to the pool
  int refs(BlockId block) const { return refs_[block]; }

  // The keys (kv = 0) or values (kv = 1) of one layer in a block: kKvBlockPositions rows of
  // row_bytes(), one per position, each holding every kv head.
  uint8_t* page(BlockId block, int layer, int kv) const;
  int64_t row_bytes() const { return row_bytes_; }
  int64_t head_bytes() const { return head_bytes_; }
  int64_t n_layer() const { return n_layer_; }

 private:
  gguf::TensorType type_;
  int64_t n_blocks_, n_layer_, head_bytes_, row_bytes_, page_bytes_;
  std::unique_ptr<uint8_t[]> arena_;  // untouched until used, like model::ContiguousCache
  std::vector<int32_t> refs_;
  std::vector<BlockId> free_;
};

// One sequence's cache: a block table into a KvBlockPool.
class PagedCache final : public model::SequenceCache {
 public:
  // capacity: the most positions this sequence may hold (its context length).
  PagedCache(KvBlockPool& pool, int64_t capacity);
  ~PagedCache() override;
  PagedCache(const PagedCache&) = delete;
  PagedCache& operator=(const PagedCache&) = delete;

  int64_t size() const override { return size_; }
  int64_t capacity() const override { return capacity_; }
  void truncate(int64_t n) override;
  // Takes blocks for the new positions when grow() has not; throws when the pool is out.
  void reserve(int64_t n) override;
  void* key_row(int layer, int64_t pos) override { return row(layer, 0, pos); }
  void* value_row(int layer, int64_t pos) override { return row(layer, 1, pos); }
  kernels::KvView keys(int layer) const override { return view(layer, 0); }
  kernels::KvView values(int layer) const override { return view(layer, 1); }
  void commit(int64_t n) override;
  gguf::TensorType type() const override { return pool_.type(); }

  // For the scheduler. Blocks needed before `n` more positions fit.
  int64_t blocks_needed(int64_t n) const;
  // Takes those blocks; false (taking none) when the pool has too few free.
  bool grow(int64_t n);
  // Starts an empty cache with shared full blocks (a prefix-cache hit): retains them.
  void adopt(std::span<const BlockId> blocks);
  std::span<const BlockId> blocks() const { return blocks_; }
  void clear();  // releases every block

 private:
  void push_block(BlockId block);
  void pop_block();
  uint8_t* row(int layer, int kv, int64_t pos);
  kernels::KvView view(int layer, int kv) const;

  KvBlockPool& pool_;
  int64_t capacity_;
  int64_t size_ = 0;
  std::vector<BlockId> blocks_;
  // Block table per layer and K/V, the pages of blocks_ in order: [layer * 2 + kv][block].
  std::vector<std::vector<const void*>> pages_;
};

}  // namespace tokenmill::engine
