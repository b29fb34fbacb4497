// The grammar of a Constraint: a set of rules, each a small automaton over bytes whose positions
// may call other rules (a recursive transition network). A rule consumes at least one byte (or
// control token) before it may end, so calls always make progress and nothing recurses without
// input (a root that no rule calls may match nothing: an output that may be empty). What a rule can
// do from a position:
//   byte edges     a byte range to another position of the rule (with an optional guard on the
//                  position's item count, for arrays' minItems/maxItems);
//   control edges  a control token (by id) to another position;
//   eps edges      to another position without input (optional parts, alternatives);
//   calls          run another rule, then continue at a return position (setting or counting the
//                  item count, under an optional guard);
//   accept         the rule may end here (return to its caller).
// The matcher (constraint_matcher.cpp) runs it as a set of stacks of (position, item count).
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace brise::grammar {

inline constexpr uint32_t kInfinite = std::numeric_limits<uint32_t>::max();
// A grammar larger than this is refused (a schema that would need it is refused as too large).
inline constexpr size_t kMaxPositions = size_t{1} << 21;

// A condition on the item count of the frame taking the edge, against its rule's bounds.
enum class Guard : uint8_t {
  None,
  BelowMax,  // count < max_items: another item may come
  AtMin,     // count >= min_items: the list may close
};
// What a call does to the caller's item count (kept in its return frame).
enum class Count : uint8_t { Keep, One, Increment };

struct ByteEdge {
  uint8_t lo, hi;
  Guard guard;
  uint32_t target;
};
struct ControlEdge {
  int32_t token;
  uint32_t target;
};
struct Call {
  uint32_t rule;
  uint32_t target;  // the return position
  Guard guard;
  Count count;
};

// How a position's distance to its rule's end depends on the item count (arrays; see
// Grammar::distance).
enum class ItemRole : uint8_t {
  None,
  AfterItem,    // after `count` items: close, or add the items minItems still needs
  ClosingOnly,  // after `count` items and whitespace: only the close may follow
  BeforeItem,   // an item must come next, then AfterItem with count + 1
  BeforeFirst,  // after '[' (count 0): close if minItems is 0, else items up to minItems
};

struct Position {
  uint32_t rule = 0;
  uint32_t bytes_begin = 0, bytes_end = 0;  // into Grammar::byte_edges
  uint32_t controls_begin = 0, controls_end = 0;
  uint32_t eps_begin = 0, eps_end = 0;  // into Grammar::eps_targets
  uint32_t calls_begin = 0, calls_end = 0;
  bool accept = false;
  ItemRole role = ItemRole::None;
  // Every printable ASCII byte but '"' and '\' leads back here and nothing else leaves (no eps,
  // calls, accept, controls): a string's text, where such bytes change nothing.
  bool plain_loop = false;
  // Byte or control edges and nothing else (no eps, calls or accept): a configuration here needs
  // no closure.
  bool simple = false;
  // Byte edges without guards as a table: target + 1 per byte (0: none), or -1 when there is none.
  int32_t dense = -1;
  uint32_t to_end = kInfinite;  // the fewest bytes/control tokens to the rule's end (count 0)
  // Free text (ToolCallOptions::text_first): an output cut here by max_tokens is a text answer
  // cut as any free answer is, so a token that leads here needs no room left for EOS.
  bool text = false;
};

struct Rule {
  std::string name = {};  // for messages: "string", "/properties/a", ...
  uint32_t start = 0;
  uint32_t min_length = kInfinite;  // the shortest text it matches
  // Lists (arrays, repeated tool calls): the bounds on the item count, the rule of an item, the
  // length of the separator before each item but the first, and of the close.
  uint32_t min_items = 0, max_items = kInfinite;
  uint32_t item_rule = kInfinite;
  uint32_t separator = 0, close = 0;
};

struct Grammar {
  std::vector<Rule> rules;
  std::vector<Position> positions;
  std::vector<ByteEdge> byte_edges;
  std::vector<ControlEdge> control_edges;
  std::vector<uint32_t> eps_targets;
  std::vector<Call> calls;
  std::vector<uint32_t> dense;  // 256 entries per dense table
  uint32_t root = 0;            // the rule of the whole output

  // The fewest bytes/control tokens from `pos` with item count `count` to the end of its rule
  // (kInfinite when there is no way).
  uint32_t distance(uint32_t pos, uint32_t count) const;
  const Rule& rule_of(uint32_t pos) const { return rules[positions[pos].rule]; }
};

// Builds a Grammar: rules and positions are added in any order (a rule may be called before its
// positions exist), then finish() orders the edges, checks the grammar and computes distances.
class Builder {
 public:
  // A new rule with its start position (rule_start).
  uint32_t add_rule(std::string name);
  uint32_t add_position(uint32_t rule);
  void byte_edge(uint32_t from, uint8_t lo, uint8_t hi, uint32_t to, Guard guard = Guard::None);
  void byte_edge(uint32_t from, uint8_t byte, uint32_t to) { byte_edge(from, byte, byte, to); }
  void control_edge(uint32_t from, int32_t token, uint32_t to);
  void eps(uint32_t from, uint32_t to);
  void call(uint32_t from, uint32_t rule, uint32_t to, Guard guard = Guard::None,
            Count count = Count::Keep);
  void accept(uint32_t pos) { positions_.at(pos).accept = true; }
  void set_role(uint32_t pos, ItemRole role) { positions_.at(pos).role = role; }
  void set_text(uint32_t pos) { positions_.at(pos).text = true; }
  // Makes `rule` a list of `item_rule` (see Rule); its positions take ItemRoles.
  void set_list(uint32_t rule, uint32_t min_items, uint32_t max_items, uint32_t item_rule,
                uint32_t separator, uint32_t close);
  // A chain of positions for `text` from `from`, ending at a position it returns.
  uint32_t literal(uint32_t from, std::string_view text);
  uint32_t rule_start(uint32_t rule) const { return rules_.at(rule).start; }
  size_t positions() const { return positions_.size(); }

  // Throws brise::Error when a rule may end without input or calls itself before any input
  // (left recursion: a $ref cycle that consumes nothing), or when the root matches nothing.
  Grammar finish(uint32_t root);

 private:
  struct Pending {
    std::vector<ByteEdge> bytes = {};
    std::vector<ControlEdge> controls = {};
    std::vector<uint32_t> eps = {};
    std::vector<Call> calls = {};
    bool accept = false;
    bool text = false;
    ItemRole role = ItemRole::None;
    uint32_t rule = 0;
  };
  std::vector<Rule> rules_;
  std::vector<Pending> positions_;
};

}  // namespace brise::grammar
