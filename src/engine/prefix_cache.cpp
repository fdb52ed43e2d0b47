#include "engine/prefix_cache.h"

#include <algorithm>
#include <functional>

namespace tokenmill::engine {

size_t PrefixCache::KeyHash::operator()(const Key& k) const {
  uint64_t h = std::hash<std::string>()(k.salt) ^ (k.parent * 0x9E3779B97F4A7C15ull);
  for (int32_t t : k.tokens) h = (h ^ static_cast<uint32_t>(t)) * 0x100000001B3ull;
  return static_cast<size_t>(h);
}

PrefixCache::~PrefixCache() {
  for (auto& [key, entry] : entries_) pool_.release(entry.block);
}

PrefixCache::Entry* PrefixCache::find(EntryId parent, const std::string& salt, std::span<const int32_t> tokens) {
  // Lookups build a Key; blocks are 32 tokens, so the copy is small next to a forward pass.
  const auto it = entries_.find(Key{parent, parent == 0 ? salt : std::string(), {tokens.begin(), tokens.end()}});
  return it == entries_.end() ? nullptr : &it->second;
}

void PrefixCache::touch(Entry& entry) { lru_.splice(lru_.end(), lru_, entry.lru); }

std::vector<BlockId> PrefixCache::match(const std::string& salt, std::span<const int32_t> tokens,
                                        int64_t max_blocks) {
  std::vector<Entry*> chain;
  EntryId parent = 0;
  const int64_t n = std::min<int64_t>(max_blocks, static_cast<int64_t>(tokens.size()) / kKvBlockPositions);
  for (int64_t i = 0; i < n; ++i) {
    Entry* e = find(parent, salt, tokens.subspan(i * kKvBlockPositions, kKvBlockPositions));
    if (!e) break;
    chain.push_back(e);
    parent = e->id;
  }
  std::vector<BlockId> blocks;
  for (Entry* e : chain) blocks.push_back(e->block);
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) touch(**it);
  return blocks;
}

void PrefixCache::insert(const std::string& salt, std::span<const int32_t> tokens, std::span<const BlockId> blocks) {
  std::vector<Entry*> chain;
  EntryId parent = 0;
  const int64_t n = std::min<int64_t>(static_cast<int64_t>(blocks.size()),
                                      static_cast<int64_t>(tokens.size()) / kKvBlockPositions);
  for (int64_t i = 0; i < n; ++i) {
    const auto block_tokens = tokens.subspan(i * kKvBlockPositions, kKvBlockPositions);
    Entry* e = find(parent, salt, block_tokens);
    if (!e) {
      Key key{parent, parent == 0 ? salt : std::string(), {block_tokens.begin(), block_tokens.end()}};
      lru_.push_back(key);
      auto [it, inserted] = entries_.emplace(std::move(key), Entry{next_id_++, blocks[i], std::prev(lru_.end())});
      pool_.retain(blocks[i]);
      e = &it->second;
    }
    chain.push_back(e);
    parent = e->id;
  }
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) touch(**it);
}

int64_t PrefixCache::evict(int64_t n) {
  int64_t freed = 0;
  for (auto it = lru_.begin(); it != lru_.end() && freed < n;) {
    const auto entry = entries_.find(*it);
    if (pool_.refs(entry->second.block) != 1) {
      ++it;
      continue;
    }
    // Entries after this one in its chain can no longer be reached; they go the same way as
    // they age, being older than the prefixes still in use.
    pool_.release(entry->second.block);
    entries_.erase(entry);
    it = lru_.erase(it);
    ++freed;
  }
  return freed;
}

}  // namespace tokenmill::engine
