// Prompt blocks kept after their sequence is done, for later requests that start the same way
// (a system prompt, a growing chat, a few-shot preamble): their first forward pass starts after
// the shared blocks. A block is found by its whole prefix — the salt, then the tokens of every
// block before it and its own — compared exactly (the hash only picks the bucket), so a hit is
// always the same text, and requests with different salts (tenants) never share a block: one
// tenant's prefix neither speeds up nor leaks to another.
//
// Each entry holds one reference to its block; when memory runs short the least recently used
// entries whose block no sequence is using are dropped. A chain is touched from its last block
// back to its first, so the first blocks, shared by the most continuations, are dropped last.
#pragma once

#include <cstdint>
#include <list>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/kv_blocks.h"

namespace tokenmill::engine {

class PrefixCache {
 public:
  explicit PrefixCache(KvBlockPool& pool) : pool_(pool) {}
  ~PrefixCache();
  PrefixCache(const PrefixCache&) = delete;
  PrefixCache& operator=(const PrefixCache&) = delete;

  // The blocks of the longest cached prefix of `tokens` under `salt`, at most max_blocks.
  // The caller retains those it keeps (PagedCache::adopt does).
  std::vector<BlockId> match(const std::string& salt, std::span<const int32_t> tokens, int64_t max_blocks);

  // Records the full blocks of a sequence's cache: blocks[i] holds tokens [i * B, (i + 1) * B).
  // Blocks already cached under the same prefix are left as they are.
  void insert(const std::string& salt, std::span<const int32_t> tokens, std::span<const BlockId> blocks);

  // Drops least recently used entries whose block only the cache holds until `n` blocks went
  // back to the pool or none is left to drop; returns how many went back.
  int64_t evict(int64_t n);

  int64_t size() const { return static_cast<int64_t>(entries_.size()); }  // blocks held

 private:
  using EntryId = uint64_t;
  // What identifies a block: the entry of the block before it (0 for the first block, which
  // carries the salt instead) and its own tokens.
  struct Key {
    EntryId parent = 0;
    std::string salt;
    std::vector<int32_t> tokens;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const;
  };
  struct Entry {
    EntryId id;
    BlockId block;
    std::list<Key>::iterator lru;  // position in lru_, most recent last
  };

  // The entry for the block after `parent` holding `tokens`, or nullptr.
  Entry* find(EntryId parent, const std::string& salt, std::span<const int32_t> tokens);
  void touch(Entry& entry);

  KvBlockPool& pool_;
  std::unordered_map<Key, Entry, KeyHash> entries_;
  std::list<Key> lru_;  // keys of entries_, least recently used first
  EntryId next_id_ = 1;
};

}  // namespace tokenmill::engine
