// Running a Constraint's grammar over generated tokens, and masking the tokens it cannot take.
//
// The grammar's state is a set of configurations: a position, the item count of its frame, and
// the stack of frames to return to (interned: a stack is an id, pushed once and shared). A set is
// kept closed: each configuration in it stands before a byte or control edge, eps edges, calls
// and returns having been followed (`complete` says the whole grammar may end), and only those
// from which the grammar can still end are kept. Stepping a byte takes every configuration's
// edges on it and closes the result.
//
// The mask: the token trie in preorder, one set per depth, each node's set the step of its
// parent's set by its byte; a dead set skips the subtree, and a subtree of plain string text
// under a configuration that plain text leaves as it is (a string's text) is taken whole. Each
// set also knows its distance (the fewest bytes to finish the grammar), which the budget needs.
// Masks are cached by state: inside a long string every step finds the mask of the step before.
#include <algorithm>
#include <cstring>
#include <string>
#include <unordered_map>

#include "brise/constraint.hpp"
#include "engine/generate/grammar.hpp"
#include "engine/tokenizer/token_trie.hpp"

namespace brise {
namespace {

using grammar::Grammar;
using grammar::kInfinite;

// Beyond these the grammar is too ambiguous to run (anyOf alternatives that stay alike for long,
// nested deeply): the generation fails with a brise::Error rather than slow down without bound.
constexpr size_t kMaxConfigs = 1024;
constexpr size_t kMaxClosure = 1 << 16;
constexpr size_t kMaxFrames = size_t{1} << 22;
constexpr size_t kCacheEntries = 64;

uint32_t add_saturating(uint32_t a, uint32_t b) {
  const uint64_t s = uint64_t{a} + b;
  return s >= kInfinite ? kInfinite : static_cast<uint32_t>(s);
}

struct Config {
  uint32_t pos, count, stack;
  bool operator==(const Config&) const = default;
};

struct ConfigSet {
  std::vector<Config> ready;
  bool complete = false;
  uint32_t distance = kInfinite;  // the fewest bytes/control tokens to the grammar's end
  void clear() {
    ready.clear();
    complete = false;
    distance = kInfinite;
  }
  bool empty() const { return ready.empty() && !complete; }
};

// A frame to return to: where, with which item count, above which stack; `below` is the distance
// from its return position to the end of the grammar.
struct Frame {
  uint32_t pos, count, parent, below;
};

struct FrameKey {
  uint32_t pos, count, parent;
  bool operator==(const FrameKey&) const = default;
};
struct FrameKeyHash {
  size_t operator()(const FrameKey& k) const {
    uint64_t h = k.pos * 0x9E3779B97F4A7C15ull;
    h ^= (h >> 29) + k.count * 0xBF58476D1CE4E5B9ull;
    h ^= (h >> 31) + k.parent * 0x94D049BB133111EBull;
    return static_cast<size_t>(h ^ (h >> 32));
  }
};

}  // namespace

struct ConstraintMatcher::State {
  std::shared_ptr<const Constraint> constraint;
  const Grammar& g;
  const TokenTrie& trie;
  const int32_t eos;
  const size_t words;  // of a mask

  std::vector<Frame> frames = {Frame{0, 0, 0, 0}};  // frames[0]: the empty stack
  std::unordered_map<FrameKey, uint32_t, FrameKeyHash> frame_ids;
  ConfigSet current;
  bool ended = false;  // EOS taken
  bool steered = false;

  // Scratch.
  std::vector<ConfigSet> levels;  // the walk's set at each depth of the trie
  ConfigSet step_a, step_b;
  std::vector<Config> work, visited;
  std::vector<uint64_t> filtered;  // a mask under a budget

  struct Entry {
    uint64_t hash = 0;
    std::vector<Config> ready;
    bool complete = false;
    std::vector<uint64_t> bits;
    uint32_t max_after = 0;       // the largest distance after an allowed token
    uint32_t max_text_after = 0;  // after an allowed token of the trie
  };
  std::vector<Entry> cache;
  size_t next_slot = 0;

  explicit State(std::shared_ptr<const Constraint> c)
      : constraint(std::move(c)),
        g(constraint->grammar()),
        trie(constraint->trie()),
        eos(constraint->eos_id()),
        words((trie.vocab_size + 63) / 64),
        levels(trie.max_depth + 1) {
    close(Config{g.rules[g.root].start, 0, 0}, current);
  }

  uint32_t distance(const Config& c) const {
    return add_saturating(g.distance(c.pos, c.count), frames[c.stack].below);
  }

  uint32_t push_frame(uint32_t pos, uint32_t count, uint32_t parent) {
    const FrameKey key{pos, count, parent};
    if (const auto it = frame_ids.find(key); it != frame_ids.end()) return it->second;
    if (frames.size() >= kMaxFrames)
      throw Error("constraint: the grammar's stacks grew beyond " + std::to_string(kMaxFrames));
    const uint32_t below = add_saturating(g.distance(pos, count), frames[parent].below);
    frames.push_back({pos, count, parent, below});
    const auto id = static_cast<uint32_t>(frames.size() - 1);
    frame_ids.emplace(key, id);
    return id;
  }

  bool guard_ok(grammar::Guard guard, const Config& c) const {
    switch (guard) {
      case grammar::Guard::None:
        return true;
      case grammar::Guard::BelowMax:
        return c.count < g.rule_of(c.pos).max_items;
      case grammar::Guard::AtMin:
        return c.count >= g.rule_of(c.pos).min_items;
    }
    return false;
  }

  // A configuration from which the grammar cannot end (an unsatisfiable part, a list closed
  // below its minItems) is left out: what it could read leads nowhere.
  void add_ready(const Config& c, ConfigSet& out) {
    const uint32_t d = distance(c);
    if (d == kInfinite) return;
    if (std::find(out.ready.begin(), out.ready.end(), c) != out.ready.end()) return;
    if (out.ready.size() >= kMaxConfigs)
      throw Error("constraint: the grammar is too ambiguous here (more than " +
                  std::to_string(kMaxConfigs) + " ways to read the output)");
    out.ready.push_back(c);
    out.distance = std::min(out.distance, d);
  }

  // Adds `c` and everything it reaches without input to `out`.
  void close(const Config& c, ConfigSet& out) {
    if (g.positions[c.pos].simple) {
      add_ready(c, out);
      return;
    }
    work.clear();
    visited.clear();
    work.push_back(c);
    while (!work.empty()) {
      const Config x = work.back();
      work.pop_back();
      if (std::find(visited.begin(), visited.end(), x) != visited.end()) continue;
      if (visited.size() >= kMaxClosure)
        throw Error("constraint: the grammar is too ambiguous here");
      visited.push_back(x);
      const grammar::Position& p = g.positions[x.pos];
      if (p.bytes_begin != p.bytes_end || p.controls_begin != p.controls_end) add_ready(x, out);
      for (uint32_t k = p.eps_begin; k < p.eps_end; ++k)
        work.push_back({g.eps_targets[k], x.count, x.stack});
      for (uint32_t k = p.calls_begin; k < p.calls_end; ++k) {
        const grammar::Call& call = g.calls[k];
        if (!guard_ok(call.guard, x)) continue;
        uint32_t count = x.count;
        if (call.count == grammar::Count::One) count = 1;
        if (call.count == grammar::Count::Increment) count = add_saturating(count, 1);
        const uint32_t stack = push_frame(call.target, count, x.stack);
        work.push_back({g.rules[call.rule].start, 0, stack});
      }
      if (p.accept) {
        if (x.stack == 0) {
          out.complete = true;
          out.distance = 0;
        } else {
          const Frame& f = frames[x.stack];
          work.push_back({f.pos, f.count, f.parent});
        }
      }
    }
  }

  void step_byte(const ConfigSet& in, uint8_t b, ConfigSet& out) {
    out.clear();
    for (const Config& c : in.ready) {
      const grammar::Position& p = g.positions[c.pos];
      if (p.dense >= 0) {
        const uint32_t t = g.dense[static_cast<size_t>(p.dense) + b];
        if (t != 0) close({t - 1, c.count, c.stack}, out);
        continue;
      }
      for (uint32_t k = p.bytes_begin; k < p.bytes_end; ++k) {
        const grammar::ByteEdge& e = g.byte_edges[k];
        if (b < e.lo) break;  // sorted by lo
        if (b <= e.hi && guard_ok(e.guard, c)) close({e.target, c.count, c.stack}, out);
      }
    }
  }

  void step_control(const ConfigSet& in, int32_t token, ConfigSet& out) {
    out.clear();
    for (const Config& c : in.ready) {
      const grammar::Position& p = g.positions[c.pos];
      for (uint32_t k = p.controls_begin; k < p.controls_end; ++k)
        if (g.control_edges[k].token == token)
          close({g.control_edges[k].target, c.count, c.stack}, out);
    }
  }

  static void set_bit(uint64_t* bits, int32_t id) {
    bits[static_cast<uint32_t>(id) >> 6] |= uint64_t{1} << (static_cast<uint32_t>(id) & 63);
  }

  static void clear_bit(uint64_t* bits, int32_t id) {
    bits[static_cast<uint32_t>(id) >> 6] &= ~(uint64_t{1} << (static_cast<uint32_t>(id) & 63));
  }

  // The largest distance after an allowed token: one of the trie (text), a control token.
  struct Reach {
    uint32_t text = 0, controls = 0;
  };

  // Sets the bits of the tokens allowed from `start` whose distance after them is at most
  // `limit` (-1: none), EOS where the grammar may end. `excluded`: a token with a finite distance
  // above `limit` was left out.
  Reach walk(const ConfigSet& start, int64_t limit, uint64_t* bits, bool& excluded) {
    uint32_t max_after = 0;
    const auto allow = [&](uint32_t distance, uint32_t first, uint32_t last, bool text = false) {
      if (first == last) return;
      if (distance == kInfinite) return;
      if (distance > limit && !(text && limit >= -1)) {
        excluded = true;
        return;
      }
      max_after = std::max(max_after, distance);
      for (uint32_t t = first; t < last; ++t) set_bit(bits, trie.tokens[t]);
    };
    const size_t nodes = trie.nodes();
    for (size_t n = 1; n < nodes;) {
      const uint32_t d = trie.depth[n];
      const ConfigSet& parent = d == 1 ? start : levels[d - 1];
      if (parent.ready.size() == 1 && !parent.complete &&
          g.positions[parent.ready[0].pos].plain_loop && trie.plain_subtree[n]) {
        // Plain text inside a string: every token below leaves the state as it is.
        const uint32_t end = trie.subtree_end[n];
        allow(parent.distance, trie.first_token[n], trie.first_token[end]);
        n = end;
        continue;
      }
      ConfigSet& here = levels[d];
      step_byte(parent, trie.byte[n], here);
      if (here.empty()) {
        n = trie.subtree_end[n];
        continue;
      }
      allow(here.distance, trie.first_token[n], trie.first_token[n + 1], in_text(here));
      n = here.ready.empty() ? trie.subtree_end[n] : n + 1;
    }
    const uint32_t controls = walk_controls(start, limit, bits, excluded);
    if (start.complete) set_bit(bits, eos);
    return {max_after, controls};
  }

  // walk() for the control tokens, each once: the bits of those within `limit` set, of the others
  // cleared. Returns the largest distance after an allowed one.
  uint32_t walk_controls(const ConfigSet& start, int64_t limit, uint64_t* bits, bool& excluded) {
    uint32_t max_after = 0;
    std::vector<int32_t> seen;
    for (const Config& c : start.ready) {
      const grammar::Position& p = g.positions[c.pos];
      for (uint32_t k = p.controls_begin; k < p.controls_end; ++k) {
        const int32_t token = g.control_edges[k].token;
        if (std::find(seen.begin(), seen.end(), token) != seen.end()) continue;
        seen.push_back(token);
        step_control(start, token, step_a);
        if (step_a.empty() || step_a.distance == kInfinite) continue;
        if (step_a.distance > limit) {
          excluded = true;
          clear_bit(bits, token);
          continue;
        }
        max_after = std::max(max_after, step_a.distance);
        set_bit(bits, token);
      }
    }
    return max_after;
  }

  // The set stands in free text (grammar::Position::text): the output may be cut there.
  bool in_text(const ConfigSet& s) const {
    return std::any_of(s.ready.begin(), s.ready.end(),
                       [&](const Config& c) { return c.stack == 0 && g.positions[c.pos].text; });
  }

  uint64_t hash_of(const ConfigSet& s) const {
    uint64_t h = s.complete ? 0x51ED270B27u : 0x2545F491u;
    for (const Config& c : s.ready)
      h = (h ^ FrameKeyHash{}(FrameKey{c.pos, c.count, c.stack})) * 0x100000001B3ull;
    return h;
  }

  // The mask of the current state without a budget (tokens that lead nowhere left out), cached.
  const Entry& unbudgeted() {
    const uint64_t h = hash_of(current);
    for (const Entry& e : cache)
      if (e.hash == h && e.complete == current.complete && e.ready == current.ready) return e;
    if (cache.size() < kCacheEntries) cache.emplace_back();
    Entry& e = cache[next_slot];
    next_slot = (next_slot + 1) % kCacheEntries;
    e.hash = h;
    e.ready = current.ready;
    e.complete = current.complete;
    e.bits.assign(words, 0);
    bool excluded = false;
    const Reach reach = walk(current, int64_t{kInfinite} - 1, e.bits.data(), excluded);
    e.max_after = std::max(reach.text, reach.controls);
    e.max_text_after = reach.text;
    return e;
  }
};

ConstraintMatcher::ConstraintMatcher(std::shared_ptr<const Constraint> constraint) {
  if (!constraint) throw Error("constraint: none given");
  state_ = std::make_unique<State>(std::move(constraint));
}
ConstraintMatcher::~ConstraintMatcher() = default;
ConstraintMatcher::ConstraintMatcher(ConstraintMatcher&&) noexcept = default;
ConstraintMatcher& ConstraintMatcher::operator=(ConstraintMatcher&&) noexcept = default;

std::span<const uint64_t> ConstraintMatcher::allowed(uint32_t remaining) {
  State& s = *state_;
  s.filtered.assign(s.words, 0);
  if (s.ended) return s.filtered;
  const State::Entry& e = s.unbudgeted();
  // The tokens left after this one must hold the rest of the grammar and EOS.
  const int64_t limit = int64_t{remaining} - 2;
  if (e.max_after <= limit) return e.bits;
  bool excluded = false;
  if (e.max_text_after <= limit) {
    // Only control tokens can be over the budget ([TOOL_CALLS] from free text): the cached mask
    // less those, without another walk over the trie.
    s.filtered = e.bits;
    s.walk_controls(s.current, limit, s.filtered.data(), excluded);
  } else {
    s.walk(s.current, limit, s.filtered.data(), excluded);
  }
  const bool any = std::any_of(s.filtered.begin(), s.filtered.end(), [](uint64_t w) { return w; });
  if (!any) return e.bits;  // the budget cannot be met: the grammar alone
  if (excluded) s.steered = true;
  return s.filtered;
}

bool ConstraintMatcher::accept(int32_t id) {
  State& s = *state_;
  if (s.ended || id < 0 || static_cast<size_t>(id) >= s.trie.vocab_size) return false;
  if (id == s.eos) {
    if (!s.current.complete) return false;
    s.ended = true;
    s.current.clear();
    return true;
  }
  const uint32_t node = s.trie.node_of_token[static_cast<size_t>(id)];
  if (node == 0) {
    s.step_control(s.current, id, s.step_a);
    if (s.step_a.empty()) return false;
    std::swap(s.current, s.step_a);
    return true;
  }
  uint8_t bytes[256];
  std::vector<uint8_t> long_bytes;
  const uint32_t depth = s.trie.depth[node];
  uint8_t* path = bytes;
  if (depth > sizeof bytes) {
    long_bytes.resize(depth);
    path = long_bytes.data();
  }
  for (uint32_t n = node, i = depth; n != 0; n = s.trie.parent[n]) path[--i] = s.trie.byte[n];
  const ConfigSet* from = &s.current;
  for (uint32_t i = 0; i < depth; ++i) {
    ConfigSet& to = (i % 2 == 0) ? s.step_a : s.step_b;
    s.step_byte(*from, path[i], to);
    if (to.empty()) return false;
    from = &to;
  }
  s.current = *from;
  return true;
}

bool ConstraintMatcher::finished() const {
  return state_->ended || (state_->current.complete && state_->current.ready.empty());
}

bool ConstraintMatcher::can_end() const {
  return state_->current.complete;
}

bool ConstraintMatcher::steered() const {
  return state_->steered;
}

}  // namespace brise
