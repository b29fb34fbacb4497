// The scheduler's host-RAM prefix cache: KV snapshots of slots (brise::KVSnapshot) that another
// job was about to overwrite, keyed by their tokens, for later prompts that start with them.
// Least recently used first out; the snapshots' bytes (KVSnapshot::bytes) never exceed the limit.
#pragma once

#include <cstdint>
#include <list>
#include <span>
#include <vector>

#include "brise/session.hpp"

namespace brise {

class PrefixCache {
 public:
  explicit PrefixCache(uint64_t limit_bytes) : limit_(limit_bytes) {}

  // Keeps `snapshot` as the most recently used entry, unless an entry already gives all of its
  // tokens (that one becomes the most recently used instead). Entries it gives all of are
  // dropped; then the least recently used go until the total fits. A snapshot larger than the
  // limit is not kept.
  void store(KVSnapshot snapshot);

  struct Match {
    const KVSnapshot* snapshot = nullptr;  // null: no entry gives a token of the prompt
    uint32_t tokens = 0;                   // KVSnapshot::reusable_prefix
  };
  // The entry that gives the longest prefix of `prompt` (the most recently used of equals), now
  // the most recently used.
  Match find(std::span<const int32_t> prompt);

  uint64_t bytes() const { return bytes_; }
  uint64_t limit() const { return limit_; }
  size_t size() const { return entries_.size(); }
  // The entries' tokens, the most recently used first.
  std::vector<std::vector<int32_t>> keys() const;

 private:
  struct Entry {
    KVSnapshot snapshot;
    uint64_t bytes;
  };
  std::list<Entry> entries_;  // the most recently used first
  uint64_t limit_;
  uint64_t bytes_ = 0;
};

}  // namespace brise
