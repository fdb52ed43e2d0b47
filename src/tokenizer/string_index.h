// Hash indexes for vocabularies of 10^5 entries: built in milliseconds when a model loads and
// probed on every word tokenized, so both are flat open-addressing tables, not node-based maps.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tokenmill::tokenizer {

// Byte string -> int32 value. Keys are copied into the index, so it owns everything it needs.
class StringIndex {
 public:
  explicit StringIndex(size_t expected_size = 0);

  // A key inserted again takes the new value.
  void insert(std::string_view key, int32_t value);
  // The value, or -1 when absent.
  int32_t find(std::string_view key) const;
  size_t size() const { return values_.size(); }

 private:
  struct Slot {
    uint32_t tag;    // high bits of the hash, so most mismatches skip the key comparison
    int32_t entry;   // index into values_ / offsets_, or -1 when empty
  };
  std::string_view key(int32_t entry) const {
    return {arena_.data() + offsets_[entry], offsets_[entry + 1] - offsets_[entry]};
  }
  void grow();

  std::string arena_;
  std::vector<uint32_t> offsets_{0};
  std::vector<int32_t> values_;
  std::vector<Slot> slots_;
  uint64_t mask_ = 0;
};

// (left, right) pair of token ids -> (rank, merged token id): the BPE merge table.
class MergeTable {
 public:
  struct Merge {
    int32_t rank;
    int32_t result;
  };

  explicit MergeTable(size_t expected_size = 0);
  // A pair inserted again keeps its first (lowest) rank, as a merges list read in order does.
  void insert(int32_t left, int32_t right, Merge merge);
  // The merge, or rank -1 when the pair does not merge.
  Merge find(int32_t left, int32_t right) const {
    if (left < 0 || right < 0) return {-1, -1};
    const uint64_t k = pack(left, right);
    for (uint64_t i = hash(k) & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.key == k) return s.merge;
      if (s.key == kEmpty) return {-1, -1};
    }
  }
  size_t size() const { return size_; }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  struct Slot {
    uint64_t key;
    Merge merge;
  };
  static uint64_t pack(int32_t left, int32_t right) {
    return (uint64_t{static_cast<uint32_t>(left)} << 32) | static_cast<uint32_t>(right);
  }
  static uint64_t hash(uint64_t k) {
    k ^= k >> 31;
    k *= 0x9e3779b97f4a7c15ULL;
    return k ^ (k >> 29);
  }
  void grow();

  std::vector<Slot> slots_;
  uint64_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace tokenmill::tokenizer
