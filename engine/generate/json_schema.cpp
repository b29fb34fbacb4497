// Reading a JSON Schema: every keyword is either understood, an annotation, or refused by name.
#include "engine/generate/json_schema.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <set>
#include <string>

#include "brise/constraint.hpp"
#include "brise/tokenizer.hpp"

namespace brise::json_schema {
namespace {

using python_json::Value;

// Keywords that describe and never constrain: accepted and ignored.
const std::set<std::string, std::less<>> kAnnotations = {"title",    "description", "default",
                                                         "examples", "$comment",    "deprecated",
                                                         "readOnly", "writeOnly"};
// ... and at the root only.
const std::set<std::string, std::less<>> kRootOnly = {"$schema", "$id", "$defs", "definitions"};
const std::set<std::string, std::less<>> kObjectKeywords = {"properties", "required",
                                                            "additionalProperties"};
const std::set<std::string, std::less<>> kArrayKeywords = {"items", "minItems", "maxItems"};
const std::set<std::string, std::less<>> kStringKeywords = {"minLength", "maxLength"};
const std::set<std::string, std::less<>> kNumberKeywords = {"minimum", "maximum",
                                                            "exclusiveMinimum", "exclusiveMaximum"};
// Bounds on numbers beyond this magnitude are refused: 2^63, past every 64-bit integer.
constexpr std::string_view kLargestBound = "9223372036854775808";
const std::set<std::string, std::less<>> kTypes = {"object",  "array",   "string", "number",
                                                   "integer", "boolean", "null"};

std::string where(const std::string& path) {
  return path.empty() ? "the root" : path;
}

// A JSON pointer's reference token for `name` (RFC 6901: ~ as ~0, / as ~1).
std::string escape_pointer(std::string_view name) {
  std::string out;
  for (const char c : name) {
    if (c == '~')
      out += "~0";
    else if (c == '/')
      out += "~1";
    else
      out += c;
  }
  return out;
}

// JSON equality: numbers by value (1 == 1.0), objects whatever their key order.
bool json_equal(const Value& a, const Value& b) {
  const auto numeric = [](const Value& v) {
    return v.kind == Value::Kind::Int || v.kind == Value::Kind::Float;
  };
  if (numeric(a) && numeric(b)) {
    if (a.kind == Value::Kind::Int && b.kind == Value::Kind::Int) return a.text == b.text;
    return std::strtod(a.text.c_str(), nullptr) == std::strtod(b.text.c_str(), nullptr);
  }
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Value::Kind::Null:
      return true;
    case Value::Kind::Bool:
      return a.boolean == b.boolean;
    case Value::Kind::String:
      return a.text == b.text;
    case Value::Kind::Array:
      if (a.items.size() != b.items.size()) return false;
      for (size_t i = 0; i < a.items.size(); ++i)
        if (!json_equal(a.items[i], b.items[i])) return false;
      return true;
    case Value::Kind::Object:
      if (a.members.size() != b.members.size()) return false;
      for (const auto& [key, value] : a.members) {
        const Value* other = b.find(key);
        if (!other || !json_equal(value, *other)) return false;
      }
      return true;
    default:
      return false;
  }
}

bool is_integral(const Value& v) {
  if (v.kind == Value::Kind::Int) return true;
  if (v.kind != Value::Kind::Float) return false;
  const double d = std::strtod(v.text.c_str(), nullptr);
  return std::isfinite(d) && d == std::floor(d);
}

// Whether `v` is of the JSON Schema type `type`.
bool has_type(const Value& v, std::string_view type) {
  switch (v.kind) {
    case Value::Kind::Null:
      return type == "null";
    case Value::Kind::Bool:
      return type == "boolean";
    case Value::Kind::Int:
    case Value::Kind::Float:
      return type == "number" || (type == "integer" && is_integral(v));
    case Value::Kind::String:
      return type == "string";
    case Value::Kind::Array:
      return type == "array";
    case Value::Kind::Object:
      return type == "object";
  }
  return false;
}

class Compiler {
 public:
  Compiler(Schema& schema, const Value& root) : s_(schema), root_(root) {}

  uint32_t run() {
    if (root_.is_object()) read_definitions();
    root_index_ = node(root_, "", true);
    resolve_refs();
    check_ref_cycles();
    return root_index_;
  }

 private:
  [[noreturn]] static void fail(const std::string& path, const std::string& keyword,
                                const std::string& problem) {
    throw SchemaError(path, keyword, "JSON Schema: " + problem + " at " + where(path));
  }

  void read_definitions() {
    for (const char* key : {"$defs", "definitions"}) {
      const Value* defs = root_.find(key);
      if (!defs) continue;
      const std::string path = std::string("/") + key;
      if (!defs->is_object()) fail("", key, std::string("'") + key + "' must be an object");
      for (const auto& [name, def] : defs->members) {
        const std::string def_path = path + "/" + escape_pointer(name);
        definitions_["#" + def_path] = s_.add(Node{.kind = Kind::Never, .path = def_path});
        pending_definitions_.push_back({&def, def_path});
      }
    }
    // Compiled after all are known, each into its placeholder.
    for (const auto& [def, path] : pending_definitions_) {
      const uint32_t at = definitions_.at("#" + path);
      const uint32_t compiled = node(*def, path, false);
      s_.nodes[at] = Node{.kind = Kind::Ref, .path = path, .target = compiled};
    }
  }

  uint32_t node(const Value& v, const std::string& path, bool is_root) {
    if (v.kind == Value::Kind::Bool)
      return s_.add(Node{.kind = v.boolean ? Kind::Any : Kind::Never, .path = path});
    if (!v.is_object()) fail(path, "", "a schema must be an object or a boolean");
    std::vector<std::string> constraints;  // the keywords that constrain, in order
    for (const auto& [key, value] : v.members) {
      if (kAnnotations.count(key)) continue;
      if (kRootOnly.count(key)) {
        if (!is_root) fail(path, key, "'" + key + "' is supported at the root only, not");
        continue;
      }
      const bool known = kObjectKeywords.count(key) || kArrayKeywords.count(key) ||
                         kStringKeywords.count(key) || kNumberKeywords.count(key) ||
                         key == "type" || key == "enum" || key == "const" || key == "anyOf" ||
                         key == "$ref";
      if (!known) fail(path, key, "unsupported keyword '" + key + "'");
      constraints.push_back(key);
    }
    const auto has = [&](std::string_view key) {
      return std::find(constraints.begin(), constraints.end(), key) != constraints.end();
    };
    const auto alone = [&](const std::string& keyword) {
      for (const auto& other : constraints)
        if (other != keyword)
          fail(path, keyword,
               "'" + keyword + "' beside '" + other +
                   "' is not supported (put the keywords inside it)");
    };
    if (has("$ref")) {
      alone("$ref");
      return ref(*v.find("$ref"), path);
    }
    if (has("anyOf")) {
      alone("anyOf");
      return any_of(*v.find("anyOf"), path);
    }
    const std::vector<std::string> types = type_list(v, path);
    if (has("enum") || has("const")) {
      for (const auto& other : constraints)
        if (other != "enum" && other != "const" && other != "type")
          fail(path, other, "'" + other + "' beside 'enum' or 'const' is not supported");
      return literals(v, path, types);
    }
    std::vector<uint32_t> alternatives;
    const auto words_of = [&](const std::set<std::string, std::less<>>& group) {
      return std::any_of(constraints.begin(), constraints.end(),
                         [&](const auto& k) { return group.count(k) > 0; });
    };
    const bool object_words = words_of(kObjectKeywords), array_words = words_of(kArrayKeywords);
    const bool string_words = words_of(kStringKeywords), number_words = words_of(kNumberKeywords);
    const auto has_type_name = [&](std::string_view t) {
      return std::find(types.begin(), types.end(), t) != types.end();
    };
    // Without `type`, the keywords say which types are meant. Keywords of a type that `type`
    // leaves out still have to be valid.
    const bool untyped = types.empty();
    const bool want_object = untyped ? object_words : has_type_name("object");
    const bool want_array = untyped ? array_words : has_type_name("array");
    const bool want_string = untyped ? string_words : has_type_name("string");
    const bool want_number = untyped ? number_words : has_type_name("number");
    const bool want_integer = !want_number && has_type_name("integer");
    const uint32_t object_node = object(v, path);
    const uint32_t array_node = array(v, path);
    Node string_node{.kind = Kind::String, .path = path};
    string_node.min_length = count(v, path, "minLength", 0);
    string_node.max_length = count(v, path, "maxLength", grammar::kInfinite);
    if (string_node.min_length > string_node.max_length)
      fail(path, "maxLength",
           "'minLength' " + std::to_string(string_node.min_length) + " is above 'maxLength' " +
               std::to_string(string_node.max_length));
    const json_range::Range range = numeric_range(v, path, want_integer);
    if (untyped && !object_words && !array_words && !string_words && !number_words)
      return s_.add(Node{.kind = Kind::Any, .path = path});
    if (want_object) alternatives.push_back(object_node);
    if (want_array) alternatives.push_back(array_node);
    if (want_string) alternatives.push_back(s_.add(std::move(string_node)));
    if (want_number || want_integer)
      alternatives.push_back(s_.add(
          Node{.kind = want_number ? Kind::Number : Kind::Integer, .path = path, .range = range}));
    if (has_type_name("boolean"))
      alternatives.push_back(s_.add(Node{.kind = Kind::Literals, .literals = {"true", "false"}}));
    if (has_type_name("null"))
      alternatives.push_back(s_.add(Node{.kind = Kind::Literals, .literals = {"null"}}));
    if (alternatives.size() == 1) return alternatives[0];
    return s_.add(Node{.kind = Kind::Union, .path = path, .alternatives = alternatives});
  }

  std::vector<std::string> type_list(const Value& v, const std::string& path) {
    const Value* t = v.find("type");
    if (!t) return {};
    std::vector<std::string> types;
    const auto add = [&](const Value& name) {
      if (!name.is_string() || !kTypes.count(name.text))
        fail(path, "type",
             "'type' must name object, array, string, number, integer, boolean or null");
      if (std::find(types.begin(), types.end(), name.text) == types.end())
        types.push_back(name.text);
    };
    if (t->is_array()) {
      if (t->items.empty()) fail(path, "type", "'type' must not be an empty list");
      for (const Value& name : t->items) add(name);
    } else {
      add(*t);
    }
    return types;
  }

  uint32_t ref(const Value& target, const std::string& path) {
    if (!target.is_string()) fail(path, "$ref", "'$ref' must be a string");
    const uint32_t at = s_.add(Node{.kind = Kind::Ref, .path = path});
    refs_.push_back({at, target.text});
    return at;
  }

  void resolve_refs() {
    for (const auto& [at, target] : refs_) {
      const std::string& path = s_.nodes[at].path;
      if (target == "#") {
        s_.nodes[at].target = root_index_;
        continue;
      }
      const bool local = target.starts_with("#/$defs/") || target.starts_with("#/definitions/");
      if (!local)
        fail(path, "$ref",
             "'$ref' to '" + target + "' is not supported (only '#' and '#/$defs/NAME')");
      const auto it = definitions_.find(target);
      if (it == definitions_.end())
        fail(path, "$ref", "'$ref' to an unknown definition '" + target + "'");
      s_.nodes[at].target = it->second;
    }
  }

  // A $ref or anyOf chain that comes back to itself without an object or array between would
  // make a grammar rule that calls itself before any input.
  void check_ref_cycles() {
    for (const auto& [start, target] : refs_) {
      std::vector<uint32_t> stack = {start};
      std::set<uint32_t> seen;
      while (!stack.empty()) {
        const uint32_t n = stack.back();
        stack.pop_back();
        const Node& node = s_.nodes[n];
        std::vector<uint32_t> next;
        if (node.kind == Kind::Ref) next.push_back(node.target);
        if (node.kind == Kind::Union) next = node.alternatives;
        for (const uint32_t m : next) {
          if (m == start)
            fail(s_.nodes[start].path, "$ref",
                 "a '$ref' cycle that comes back to itself without an object or array between");
          if (seen.insert(m).second) stack.push_back(m);
        }
      }
    }
  }

  uint32_t any_of(const Value& list, const std::string& path) {
    if (!list.is_array() || list.items.empty())
      fail(path, "anyOf", "'anyOf' must be a non-empty list of schemas");
    Node u{.kind = Kind::Union, .path = path};
    for (size_t i = 0; i < list.items.size(); ++i)
      u.alternatives.push_back(node(list.items[i], path + "/anyOf/" + std::to_string(i), false));
    return s_.add(std::move(u));
  }

  uint32_t literals(const Value& v, const std::string& path,
                    const std::vector<std::string>& types) {
    std::vector<const Value*> values;
    if (const Value* e = v.find("enum")) {
      if (!e->is_array()) fail(path, "enum", "'enum' must be a list");
      for (const Value& item : e->items) values.push_back(&item);
    }
    if (const Value* c = v.find("const")) {
      if (v.find("enum")) {
        std::erase_if(values, [&](const Value* x) { return !json_equal(*x, *c); });
      } else {
        values.push_back(c);
      }
    }
    Node n{.kind = Kind::Literals, .path = path};
    for (const Value* value : values) {
      if (!types.empty() && std::none_of(types.begin(), types.end(),
                                         [&](const std::string& t) { return has_type(*value, t); }))
        continue;
      std::string text = python_json::dumps(*value);
      if (std::find(n.literals.begin(), n.literals.end(), text) == n.literals.end())
        n.literals.push_back(std::move(text));
    }
    if (n.literals.empty()) n.kind = Kind::Never;
    return s_.add(std::move(n));
  }

  uint32_t count(const Value& v, const std::string& path, const char* keyword, uint32_t absent) {
    const Value* c = v.find(keyword);
    if (!c) return absent;
    const std::string k = keyword;
    if (!(c->kind == Value::Kind::Int || c->kind == Value::Kind::Float) || !is_integral(*c) ||
        c->text.starts_with("-"))
      fail(path, k, "'" + k + "' must be a non-negative integer");
    const double d = std::strtod(c->text.c_str(), nullptr);
    if (d >= static_cast<double>(grammar::kInfinite - 1)) {
      if (k == "maxItems" || k == "maxLength") return grammar::kInfinite;  // no limit in practice
      fail(path, k, "'" + k + "' " + c->text + " is more than brise can generate");
    }
    return static_cast<uint32_t>(d);
  }

  // One of minimum, maximum, exclusiveMinimum, exclusiveMaximum as an exact decimal.
  static std::optional<json_range::Bound> bound(const Value& v, const std::string& path,
                                                const std::string& keyword, bool exclusive) {
    const Value* b = v.find(keyword);
    if (!b) return std::nullopt;
    const bool number = b->kind == Value::Kind::Int || b->kind == Value::Kind::Float;
    const std::optional<json_range::Decimal> d =
        number ? json_range::parse_decimal(b->text) : std::nullopt;
    if (!d) fail(path, keyword, "'" + keyword + "' must be a finite number");
    json_range::Decimal magnitude = *d;
    magnitude.negative = false;
    if (json_range::compare(magnitude, {.integer = std::string(kLargestBound)}) > 0)
      fail(path, keyword,
           "'" + keyword + "' " + b->text + " is beyond +-2^63 (" + std::string(kLargestBound) +
               "), more than brise can generate");
    return json_range::Bound{*d, exclusive};
  }

  // The tighter of a bound and its exclusive form (draft 2020-12: both numbers; draft 4's
  // boolean exclusiveMinimum makes minimum exclusive). `lower`: which side.
  static std::optional<json_range::Bound> side(const Value& v, const std::string& path,
                                               const std::string& inclusive_key,
                                               const std::string& exclusive_key, bool lower) {
    std::optional<json_range::Bound> inclusive = bound(v, path, inclusive_key, false);
    const Value* e = v.find(exclusive_key);
    if (e && e->kind == Value::Kind::Bool) {
      if (e->boolean && !inclusive)
        fail(path, exclusive_key,
             "'" + exclusive_key + "' true (draft 4) needs '" + inclusive_key + "' beside it");
      if (e->boolean) inclusive->exclusive = true;
      return inclusive;
    }
    std::optional<json_range::Bound> exclusive = bound(v, path, exclusive_key, true);
    if (!inclusive || !exclusive) return inclusive ? inclusive : exclusive;
    const int c = json_range::compare(exclusive->value, inclusive->value);
    // At the same value the exclusive bound is the tighter.
    return (lower ? c >= 0 : c <= 0) ? exclusive : inclusive;
  }

  static json_range::Range numeric_range(const Value& v, const std::string& path, bool integer) {
    json_range::Range r{.lower = side(v, path, "minimum", "exclusiveMinimum", true),
                        .upper = side(v, path, "maximum", "exclusiveMaximum", false),
                        .integer = integer};
    if (json_range::admits_some(r)) return r;
    std::string bounds;
    std::string keyword;
    for (const char* k : {"minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"}) {
      const Value* b = v.find(k);
      if (!b || b->kind == Value::Kind::Bool) continue;
      bounds += (bounds.empty() ? "'" : " and '") + std::string(k) + "' " + b->text;
      keyword = k;
    }
    fail(
        path, keyword,
        std::string("no ") +
            (integer ? "integer" : "number (of at most 15 fraction digits, as brise writes them)") +
            " satisfies " + bounds);
  }

  uint32_t object(const Value& v, const std::string& path) {
    Node n{.kind = Kind::Object, .path = path};
    const Value* properties = v.find("properties");
    if (properties) {
      if (!properties->is_object()) fail(path, "properties", "'properties' must be an object");
      for (const auto& [name, schema] : properties->members)
        n.properties.push_back(
            {name, node(schema, path + "/properties/" + escape_pointer(name), false), false});
    }
    // additionalProperties: the values of names that `properties` does not list.
    uint32_t additional = 0;
    bool additional_false = false;
    if (const Value* a = v.find("additionalProperties")) {
      if (a->kind == Value::Kind::Bool) additional_false = !a->boolean;
      additional = node(*a, path + "/additionalProperties", false);
    } else {
      additional = s_.add(Node{.kind = Kind::Any});
    }
    if (const Value* required = v.find("required")) {
      if (!required->is_array()) fail(path, "required", "'required' must be a list of names");
      for (const Value& name : required->items) {
        if (!name.is_string()) fail(path, "required", "'required' must be a list of names");
        auto it = std::find_if(n.properties.begin(), n.properties.end(),
                               [&](const Property& p) { return p.name == name.text; });
        if (it == n.properties.end()) {
          if (additional_false)
            fail(path, "required",
                 "'required' names '" + name.text +
                     "', which 'properties' lacks and 'additionalProperties' (false) refuses");
          n.properties.push_back({name.text, additional, true});
        } else {
          it->required = true;
        }
      }
    }
    if (n.properties.empty()) {
      n.free_keys = true;
      n.values = additional;
    }
    return s_.add(std::move(n));
  }

  uint32_t array(const Value& v, const std::string& path) {
    Node n{.kind = Kind::Array, .path = path};
    if (const Value* items = v.find("items")) {
      if (items->is_array())
        fail(path, "items", "'items' as a list of schemas (a tuple) is not supported");
      n.values = node(*items, path + "/items", false);
    } else {
      n.values = s_.add(Node{.kind = Kind::Any});
    }
    n.min_items = count(v, path, "minItems", 0);
    n.max_items = count(v, path, "maxItems", grammar::kInfinite);
    return s_.add(std::move(n));
  }

  Schema& s_;
  const Value& root_;
  uint32_t root_index_ = 0;
  std::map<std::string, uint32_t> definitions_;  // "#/$defs/NAME" -> node
  std::vector<std::pair<const Value*, std::string>> pending_definitions_;
  std::vector<std::pair<uint32_t, std::string>> refs_;  // Ref node -> its target text
};

}  // namespace

uint32_t compile(Schema& schema, const python_json::Value& value) {
  return Compiler(schema, value).run();
}

uint32_t compile(Schema& schema, std::string_view json_text) {
  if (find_invalid_utf8(json_text) != std::string_view::npos)
    throw SchemaError("", "", "JSON Schema: the text is not valid UTF-8");
  python_json::Value value;
  try {
    value = python_json::parse(json_text, "JSON Schema");
  } catch (const SchemaError&) {
    throw;
  } catch (const Error& e) {
    throw SchemaError("", "", std::string("JSON Schema: not JSON: ") + e.what());
  }
  return compile(schema, value);
}

uint32_t resolve(const Schema& schema, uint32_t node) {
  // Ref chains end: cycles of refs alone are refused when compiled.
  while (schema.nodes[node].kind == Kind::Ref) node = schema.nodes[node].target;
  return node;
}

uint32_t objects_only(Schema& schema, uint32_t node) {
  const uint32_t n = resolve(schema, node);
  switch (schema.nodes[n].kind) {
    case Kind::Object:
      return node;
    case Kind::Any:
      return schema.add(Node{
          .kind = Kind::Object, .free_keys = true, .values = schema.add(Node{.kind = Kind::Any})});
    case Kind::Union: {
      Node u{.kind = Kind::Union, .path = schema.nodes[n].path};
      const std::vector<uint32_t> alternatives = schema.nodes[n].alternatives;
      for (const uint32_t alt : alternatives) {
        const uint32_t o = objects_only(schema, alt);
        if (schema.nodes[o].kind != Kind::Never) u.alternatives.push_back(o);
      }
      if (u.alternatives.empty()) return schema.add(Node{.kind = Kind::Never});
      return schema.add(std::move(u));
    }
    case Kind::Literals: {
      Node l{.kind = Kind::Literals, .path = schema.nodes[n].path};
      for (const auto& text : schema.nodes[n].literals)
        if (text.starts_with("{")) l.literals.push_back(text);
      if (l.literals.empty()) l.kind = Kind::Never;
      return schema.add(std::move(l));
    }
    default:
      return schema.add(Node{.kind = Kind::Never});
  }
}

}  // namespace brise::json_schema
