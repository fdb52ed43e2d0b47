#include "tokenizer/string_index.h"

#include <algorithm>
#include <bit>
#include <functional>

namespace tokenmill::tokenizer {
namespace {

// Tables stay at most half full: probes stay short and a miss ends quickly.
size_t capacity_for(size_t n) { return std::bit_ceil(std::max<size_t>(16, 2 * n)); }

uint64_t hash_bytes(std::string_view s) { return std::hash<std::string_view>{}(s); }

}  // namespace

StringIndex::StringIndex(size_t expected_size)
    : slots_(capacity_for(expected_size), Slot{0, -1}), mask_(slots_.size() - 1) {
  values_.reserve(expected_size);
  offsets_.reserve(expected_size + 1);
}

void StringIndex::insert(std::string_view k, int32_t value) {
  if (2 * (values_.size() + 1) > slots_.size()) grow();
  const uint64_t h = hash_bytes(k);
  const auto tag = static_cast<uint32_t>(h >> 32);
  for (uint64_t i = h & mask_;; i = (i + 1) & mask_) {
    Slot& s = slots_[i];
    if (s.entry < 0) {
      s = {tag, static_cast<int32_t>(values_.size())};
      arena_.append(k);
      offsets_.push_back(static_cast<uint32_t>(arena_.size()));
      values_.push_back(value);
      return;
    }
    if (s.tag == tag && key(s.entry) == k) {
      values_[s.entry] = value;
      return;
    }
  }
}

int32_t StringIndex::find(std::string_view k) const {
  const uint64_t h = hash_bytes(k);
  const auto tag = static_cast<uint32_t>(h >> 32);
  for (uint64_t i = h & mask_;; i = (i + 1) & mask_) {
    const Slot& s = slots_[i];
    if (s.entry < 0) return -1;
    if (s.tag == tag && key(s.entry) == k) return values_[s.entry];
  }
}

void StringIndex::grow() {
  std::vector<Slot> old(slots_.size() * 2, Slot{0, -1});
  old.swap(slots_);
  mask_ = slots_.size() - 1;
  for (const Slot& s : old) {
    if (s.entry < 0) continue;
    for (uint64_t i = hash_bytes(key(s.entry)) & mask_;; i = (i + 1) & mask_) {
      if (slots_[i].entry < 0) {
        slots_[i] = s;
        break;
      }
    }
  }
}

MergeTable::MergeTable(size_t expected_size)
    : slots_(capacity_for(expected_size), Slot{kEmpty, {-1, -1}}), mask_(slots_.size() - 1) {}

void MergeTable::insert(int32_t left, int32_t right, Merge merge) {
  if (2 * (size_ + 1) > slots_.size()) grow();
  const uint64_t k = pack(left, right);
  for (uint64_t i = hash(k) & mask_;; i = (i + 1) & mask_) {
    Slot& s = slots_[i];
    if (s.key == k) return;
    if (s.key == kEmpty) {
      s = {k, merge};
      ++size_;
      return;
    }
  }
}

void MergeTable::grow() {
  std::vector<Slot> old(slots_.size() * 2, Slot{kEmpty, {-1, -1}});
  old.swap(slots_);
  mask_ = slots_.size() - 1;
  for (const Slot& s : old) {
    if (s.key == kEmpty) continue;
    for (uint64_t i = hash(s.key) & mask_;; i = (i + 1) & mask_) {
      if (slots_[i].key == kEmpty) {
        slots_[i] = s;
        break;
      }
    }
  }
}

}  // namespace tokenmill::tokenizer
