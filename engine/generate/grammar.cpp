#include "engine/generate/grammar.hpp"

#include <algorithm>
#include <string>

#include "brise/error.hpp"

namespace brise::grammar {
namespace {

uint32_t saturate(uint64_t v) {
  return v >= kInfinite ? kInfinite : static_cast<uint32_t>(v);
}

bool plain_byte(unsigned b) {
  return b >= 0x20 && b <= 0x7E && b != '"' && b != '\\';
}

// The distance of a list position (ItemRole) after `count` items, items being at least
// `item_length` long.
uint32_t list_distance(const Rule& r, ItemRole role, uint64_t count, uint32_t item_length) {
  const auto after = [&](uint64_t c) -> uint64_t {
    if (c > r.max_items) return kInfinite;
    const uint64_t need = c < r.min_items ? r.min_items - c : 0;
    if (c + need > r.max_items || (need > 0 && item_length == kInfinite)) return kInfinite;
    return r.close + need * (uint64_t{r.separator} + item_length);
  };
  switch (role) {
    case ItemRole::AfterItem:
      return saturate(after(count));
    case ItemRole::ClosingOnly:
      return count >= r.min_items && count <= r.max_items ? r.close : kInfinite;
    case ItemRole::BeforeItem:
      if (count >= r.max_items || item_length == kInfinite) return kInfinite;
      return saturate(item_length + after(count + 1));
    case ItemRole::BeforeFirst:
      if (r.min_items == 0) return r.close;
      if (r.max_items < 1 || item_length == kInfinite) return kInfinite;
      return saturate(item_length + after(1));
    case ItemRole::None:
      break;
  }
  return kInfinite;
}

}  // namespace

uint32_t Grammar::distance(uint32_t pos, uint32_t count) const {
  const Position& p = positions[pos];
  if (p.role == ItemRole::None) return p.to_end;
  const Rule& r = rules[p.rule];
  const uint32_t item = r.item_rule == kInfinite ? kInfinite : rules[r.item_rule].min_length;
  return list_distance(r, p.role, count, item);
}

uint32_t Builder::add_rule(std::string name) {
  const auto id = static_cast<uint32_t>(rules_.size());
  rules_.push_back(Rule{.name = std::move(name)});
  rules_.back().start = add_position(id);
  return id;
}

uint32_t Builder::add_position(uint32_t rule) {
  if (positions_.size() >= kMaxPositions)
    throw Error("the grammar is too large (more than " + std::to_string(kMaxPositions) +
                " states)");
  positions_.push_back(Pending{.rule = rule});
  return static_cast<uint32_t>(positions_.size() - 1);
}

void Builder::byte_edge(uint32_t from, uint8_t lo, uint8_t hi, uint32_t to, Guard guard) {
  positions_.at(from).bytes.push_back({lo, hi, guard, to});
}

void Builder::control_edge(uint32_t from, int32_t token, uint32_t to) {
  positions_.at(from).controls.push_back({token, to});
}

void Builder::eps(uint32_t from, uint32_t to) {
  positions_.at(from).eps.push_back(to);
}

void Builder::call(uint32_t from, uint32_t rule, uint32_t to, Guard guard, Count count) {
  positions_.at(from).calls.push_back({rule, to, guard, count});
}

void Builder::set_list(uint32_t rule, uint32_t min_items, uint32_t max_items, uint32_t item_rule,
                       uint32_t separator, uint32_t close) {
  Rule& r = rules_.at(rule);
  r.min_items = min_items;
  r.max_items = max_items;
  r.item_rule = item_rule;
  r.separator = separator;
  r.close = close;
}

uint32_t Builder::literal(uint32_t from, std::string_view text) {
  uint32_t at = from;
  for (const char c : text) {
    const auto b = static_cast<uint8_t>(c);
    uint32_t next = kInfinite;
    for (const ByteEdge& e : positions_.at(at).bytes)
      if (e.lo == b && e.hi == b && e.guard == Guard::None) next = e.target;
    if (next == kInfinite) {
      next = add_position(positions_[at].rule);
      byte_edge(at, b, next);
    }
    at = next;
  }
  return at;
}

namespace {

// The checks of Builder::finish: no rule ends without input, no rule reaches itself before input.
// The root may end without input when no rule calls it (an output that may be empty): only calls
// need the progress.
void check_progress(const Grammar& g) {
  const size_t n_rules = g.rules.size();
  const bool root_called =
      std::any_of(g.calls.begin(), g.calls.end(), [&](const Call& c) { return c.rule == g.root; });
  std::vector<std::vector<uint32_t>> first_calls(n_rules);
  std::vector<uint32_t> seen(g.positions.size(), kInfinite);
  for (uint32_t r = 0; r < n_rules; ++r) {
    std::vector<uint32_t> stack = {g.rules[r].start};
    seen[g.rules[r].start] = r;
    while (!stack.empty()) {
      const Position& p = g.positions[stack.back()];
      stack.pop_back();
      if (p.accept && (r != g.root || root_called))
        throw Error("internal: grammar rule '" + g.rules[r].name + "' matches nothing");
      for (uint32_t i = p.calls_begin; i < p.calls_end; ++i)
        first_calls[r].push_back(g.calls[i].rule);
      for (uint32_t i = p.eps_begin; i < p.eps_end; ++i) {
        const uint32_t t = g.eps_targets[i];
        if (seen[t] != r) {
          seen[t] = r;
          stack.push_back(t);
        }
      }
    }
  }
  // A cycle among first calls: depth-first search with colours.
  std::vector<uint8_t> colour(n_rules, 0);  // 0 new, 1 on the path, 2 done
  for (uint32_t root = 0; root < n_rules; ++root) {
    if (colour[root]) continue;
    std::vector<std::pair<uint32_t, size_t>> path = {{root, 0}};
    colour[root] = 1;
    while (!path.empty()) {
      auto& [r, next] = path.back();
      if (next == first_calls[r].size()) {
        colour[r] = 2;
        path.pop_back();
        continue;
      }
      const uint32_t callee = first_calls[r][next++];
      if (colour[callee] == 1)
        throw Error("a rule that calls itself before any input ('" + g.rules[callee].name +
                    "': a $ref cycle that consumes nothing)");
      if (colour[callee] == 0) {
        colour[callee] = 1;
        path.push_back({callee, 0});
      }
    }
  }
}

// Distances to each rule's end, and rules' shortest lengths: relaxed until nothing changes.
void compute_distances(Grammar& g) {
  bool changed = true;
  const auto value_at = [&](uint32_t target, uint32_t count) {
    return g.positions[target].role == ItemRole::None ? g.positions[target].to_end
                                                      : g.distance(target, count);
  };
  while (changed) {
    changed = false;
    for (size_t i = g.positions.size(); i-- > 0;) {
      Position& p = g.positions[i];
      uint64_t best = p.accept ? 0 : kInfinite;
      if (p.role != ItemRole::None) {
        best = g.distance(static_cast<uint32_t>(i), 0);
      } else {
        for (uint32_t k = p.bytes_begin; k < p.bytes_end; ++k)
          best = std::min<uint64_t>(best, 1 + uint64_t{value_at(g.byte_edges[k].target, 0)});
        for (uint32_t k = p.controls_begin; k < p.controls_end; ++k)
          best = std::min<uint64_t>(best, 1 + uint64_t{value_at(g.control_edges[k].target, 0)});
        for (uint32_t k = p.eps_begin; k < p.eps_end; ++k)
          best = std::min<uint64_t>(best, value_at(g.eps_targets[k], 0));
        for (uint32_t k = p.calls_begin; k < p.calls_end; ++k) {
          const Call& c = g.calls[k];
          const uint32_t count = c.count == Count::One ? 1 : 0;
          best = std::min<uint64_t>(
              best, uint64_t{g.rules[c.rule].min_length} + value_at(c.target, count));
        }
      }
      const uint32_t v = saturate(best);
      if (v < p.to_end) {
        p.to_end = v;
        changed = true;
      }
    }
    for (Rule& r : g.rules) {
      const uint32_t v = g.distance(r.start, 0);
      if (v < r.min_length) {
        r.min_length = v;
        changed = true;
      }
    }
  }
}

// plain_loop and dense tables.
void index_bytes(Grammar& g) {
  for (size_t i = 0; i < g.positions.size(); ++i) {
    Position& p = g.positions[i];
    uint32_t table[256] = {};
    bool dense_ok = p.bytes_end - p.bytes_begin >= 3;
    for (uint32_t k = p.bytes_begin; k < p.bytes_end; ++k) {
      const ByteEdge& e = g.byte_edges[k];
      if (e.guard != Guard::None) dense_ok = false;
      for (unsigned b = e.lo; b <= e.hi; ++b) {
        if (table[b] != 0) dense_ok = false;  // two targets for one byte
        table[b] = e.target + 1;
      }
    }
    const bool no_more = !p.accept && p.eps_begin == p.eps_end && p.calls_begin == p.calls_end;
    p.simple = no_more && (p.bytes_begin != p.bytes_end || p.controls_begin != p.controls_end);
    bool loop = no_more && p.controls_begin == p.controls_end;
    for (unsigned b = 0x20; loop && b <= 0x7E; ++b)
      if (plain_byte(b)) loop = table[b] == i + 1;
    // With overlapping edges the table holds only one of them: no loop can be claimed then.
    p.plain_loop = loop && dense_ok;
    if (dense_ok) {
      p.dense = static_cast<int32_t>(g.dense.size());
      g.dense.insert(g.dense.end(), table, table + 256);
    }
  }
}

// Appends `part` to `all`, where the grammar's edges of one kind lie end to end; [begin, end) is
// where it went.
template <typename T>
void append(std::vector<T>& all, const std::vector<T>& part, uint32_t& begin, uint32_t& end) {
  begin = static_cast<uint32_t>(all.size());
  all.insert(all.end(), part.begin(), part.end());
  end = static_cast<uint32_t>(all.size());
}

}  // namespace

Grammar Builder::finish(uint32_t root) {
  Grammar g;
  g.root = root;
  g.rules = rules_;
  g.positions.resize(positions_.size());
  for (size_t i = 0; i < positions_.size(); ++i) {
    Pending& src = positions_[i];
    Position& p = g.positions[i];
    p.rule = src.rule;
    p.accept = src.accept;
    p.text = src.text;
    p.role = src.role;
    std::sort(src.bytes.begin(), src.bytes.end(),
              [](const ByteEdge& a, const ByteEdge& b) { return a.lo < b.lo; });
    append(g.byte_edges, src.bytes, p.bytes_begin, p.bytes_end);
    append(g.control_edges, src.controls, p.controls_begin, p.controls_end);
    append(g.eps_targets, src.eps, p.eps_begin, p.eps_end);
    append(g.calls, src.calls, p.calls_begin, p.calls_end);
  }
  check_progress(g);
  compute_distances(g);
  index_bytes(g);
  return g;
}

}  // namespace brise::grammar
