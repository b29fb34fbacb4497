#include "engine/generate/prefix_cache.hpp"

#include <algorithm>

namespace brise {
namespace {

// Whether `big` can give every token `small` holds: its tokens start with small's.
bool covers(const KVSnapshot& big, const KVSnapshot& small) {
  const auto& b = big.tokens();
  const auto& s = small.tokens();
  return s.size() <= b.size() && std::equal(s.begin(), s.end(), b.begin()) &&
         big.can_give(static_cast<uint32_t>(s.size()));
}

}  // namespace

void PrefixCache::store(KVSnapshot snapshot) {
  for (auto it = entries_.begin(); it != entries_.end(); ++it)
    if (covers(it->snapshot, snapshot)) {
      entries_.splice(entries_.begin(), entries_, it);
      return;
    }
  const uint64_t bytes = snapshot.bytes();
  if (bytes > limit_) return;
  for (auto it = entries_.begin(); it != entries_.end();)
    if (covers(snapshot, it->snapshot)) {
      bytes_ -= it->bytes;
      it = entries_.erase(it);
    } else {
      ++it;
    }
  while (bytes_ + bytes > limit_) {
    bytes_ -= entries_.back().bytes;
    entries_.pop_back();
  }
  entries_.push_front({std::move(snapshot), bytes});
  bytes_ += bytes;
}

PrefixCache::Match PrefixCache::find(std::span<const int32_t> prompt) {
  auto best = entries_.end();
  uint32_t best_tokens = 0;
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    const uint32_t n = it->snapshot.reusable_prefix(prompt);
    if (n > best_tokens) {
      best = it;
      best_tokens = n;
    }
  }
  if (best == entries_.end()) return {};
  entries_.splice(entries_.begin(), entries_, best);
  return {&entries_.front().snapshot, best_tokens};
}

std::vector<std::vector<int32_t>> PrefixCache::keys() const {
  std::vector<std::vector<int32_t>> out;
  for (const Entry& e : entries_) out.push_back(e.snapshot.tokens());
  return out;
}

}  // namespace brise
