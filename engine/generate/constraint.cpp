// Making Constraints: a JSON Schema, any JSON object, or tool calls in a chat template's form,
// compiled into a grammar (json_schema -> json_grammar -> grammar) for one tokenizer.
#include "brise/constraint.hpp"

#include <string>

#include "engine/generate/chat_rules.hpp"
#include "engine/generate/grammar.hpp"
#include "engine/generate/json_grammar.hpp"
#include "engine/generate/json_schema.hpp"
#include "engine/generate/python_json.hpp"
#include "engine/tokenizer/token_trie.hpp"

namespace brise {
namespace {

using json_schema::Kind;
using json_schema::Node;

std::shared_ptr<const Constraint> make(const Tokenizer& tokenizer, grammar::Grammar g) {
  if (tokenizer.eos_id() < 0)
    throw Error("constrained decoding needs a vocabulary with an EOS token");
  return std::make_shared<const Constraint>(std::make_shared<const grammar::Grammar>(std::move(g)),
                                            tokenizer.token_trie(), tokenizer.eos_id());
}

// Builder::finish for a schema: its errors (a grammar too large) as SchemaErrors.
grammar::Grammar finish_schema(grammar::Builder& b, uint32_t root) {
  try {
    return b.finish(root);
  } catch (const SchemaError&) {
    throw;
  } catch (const Error& e) {
    throw SchemaError("", "", std::string("JSON Schema: ") + e.what());
  }
}

void check_satisfiable(const grammar::Grammar& g) {
  if (g.rules[g.root].min_length == grammar::kInfinite)
    throw SchemaError("", "", "JSON Schema: no value satisfies the schema");
}

// The whole output: a value of `node` after an optional space (SentencePiece models start text
// with one), and nothing after it.
std::shared_ptr<const Constraint> json_output(const Tokenizer& tokenizer,
                                              const json_schema::Schema& schema, uint32_t node) {
  grammar::Builder b;
  const uint32_t root = b.add_rule("output");
  json_grammar::Rules rules(b, schema);
  const uint32_t value = b.add_position(root), end = b.add_position(root);
  rules.optional_space(b.rule_start(root), value);
  b.call(value, rules.rule_of(node), end);
  b.accept(end);
  grammar::Grammar g = finish_schema(b, root);
  check_satisfiable(g);
  return make(tokenizer, std::move(g));
}

int32_t control_token(const Tokenizer& tokenizer, const char* name, ChatTemplate tmpl) {
  const int32_t id = tokenizer.find_special(name);
  if (id < 0)
    throw Error(std::string("tool calls: the vocabulary has no ") + name + " token, which the " +
                std::string(chat_template_name(tmpl)) + " template's calls need");
  return id;
}

struct Function {
  std::string name;
  uint32_t arguments = 0;  // schema node: the objects its parameters allow
};

// The functions a call may name, their arguments compiled into `schema`.
std::vector<Function> functions(json_schema::Schema& schema, std::span<const ChatTool> tools,
                                const ToolCallOptions& options) {
  if (tools.empty()) throw Error("tool calls: there are no tools to call");
  std::vector<Function> out;
  bool found = options.function.empty();
  for (const ChatTool& tool : tools) {
    if (!chat_rules::is_function_name(tool.name))
      throw Error("tool calls: '" + tool.name +
                  "' is not a function name (1 to 64 of a-z, A-Z, 0-9, _ and -)");
    if (!options.function.empty() && tool.name != options.function) continue;
    for (const Function& f : out)
      if (f.name == tool.name) throw Error("tool calls: two tools are named '" + tool.name + "'");
    found = true;
    const std::string who = "tool '" + tool.name + "': ";
    uint32_t parameters = 0;
    try {
      parameters = json_schema::compile(schema, tool.parameters);
    } catch (const SchemaError& e) {
      throw SchemaError(e.path(), e.keyword(), who + e.what());
    }
    const uint32_t arguments = json_schema::objects_only(schema, parameters);
    if (schema.nodes[arguments].kind == Kind::Never)
      throw SchemaError("", "type", who + "JSON Schema: the parameters allow no JSON object");
    out.push_back({tool.name, arguments});
  }
  if (!found) throw Error("tool calls: '" + options.function + "' is not one of the tools");
  return out;
}

// v2, v3, v7: [TOOL_CALLS] then [{"name": ..., "arguments": {...}(, "id": "...")}, ...].
uint32_t json_list_calls(grammar::Builder& b, json_schema::Schema& schema,
                         const std::vector<Function>& fns, int version, uint32_t max_calls,
                         int32_t tool_calls, std::vector<uint32_t>& argument_rules) {
  Node calls{.kind = Kind::Union, .path = "tool call"};
  for (const Function& f : fns) {
    Node call{.kind = Kind::Object, .path = "call of " + f.name};
    const uint32_t name =
        schema.add(Node{.kind = Kind::Literals, .literals = {python_json::dumps_string(f.name)}});
    call.properties.push_back({"name", name, true});
    call.properties.push_back({"arguments", f.arguments, true});
    if (version >= 3)
      call.properties.push_back({"id", schema.add(Node{.kind = Kind::CallId}), false});
    calls.alternatives.push_back(schema.add(std::move(call)));
  }
  const uint32_t items =
      calls.alternatives.size() == 1 ? calls.alternatives[0] : schema.add(std::move(calls));
  const uint32_t list = schema.add(Node{.kind = Kind::Array,
                                        .path = "tool calls",
                                        .values = items,
                                        .min_items = 1,
                                        .max_items = max_calls});
  json_grammar::Rules rules(b, schema);
  const uint32_t root = b.add_rule("reply");
  const uint32_t after = b.add_position(root), value = b.add_position(root);
  const uint32_t end = b.add_position(root);
  b.control_edge(b.rule_start(root), tool_calls, after);
  rules.optional_space(after, value);
  b.call(value, rules.rule_of(list), end);
  b.accept(end);
  for (const Function& f : fns) argument_rules.push_back(rules.rule_of(f.arguments));
  return root;
}

// v11: [TOOL_CALLS]name([CALL_ID]id)?[ARGS]{...}, v13: [TOOL_CALLS]name[ARGS]{...}, repeated.
uint32_t tagged_calls(grammar::Builder& b, json_schema::Schema& schema,
                      const std::vector<Function>& fns, const Tokenizer& tokenizer,
                      ChatTemplate tmpl, uint32_t max_calls,
                      std::vector<uint32_t>& argument_rules) {
  const bool ids = chat_rules::version(tmpl) == 11;
  const int32_t tool_calls = control_token(tokenizer, "[TOOL_CALLS]", tmpl);
  const int32_t args = control_token(tokenizer, "[ARGS]", tmpl);
  const int32_t call_id = ids ? control_token(tokenizer, "[CALL_ID]", tmpl) : -1;
  const uint32_t bare_id = schema.add(Node{.kind = Kind::CallId, .quoted = false});
  json_grammar::Rules rules(b, schema);
  const uint32_t call = b.add_rule("tool call");
  const uint32_t name = b.add_position(call), end = b.add_position(call);
  b.accept(end);
  b.control_edge(b.rule_start(call), tool_calls, name);
  for (const Function& f : fns) {
    const uint32_t named = b.add_position(call), arguments = b.add_position(call);
    b.eps(b.literal(name, f.name), named);
    b.control_edge(named, args, arguments);
    if (ids) {
      const uint32_t id = b.add_position(call), after_id = b.add_position(call);
      b.control_edge(named, call_id, id);
      b.call(id, rules.rule_of(bare_id), after_id);
      b.control_edge(after_id, args, arguments);
    }
    argument_rules.push_back(rules.rule_of(f.arguments));
    b.call(arguments, argument_rules.back(), end);
  }
  const uint32_t root = b.add_rule("reply");
  b.set_list(root, 1, max_calls, call, /*separator=*/0, /*close=*/0);
  const uint32_t more = b.add_position(root);
  b.set_role(b.rule_start(root), grammar::ItemRole::BeforeFirst);
  b.set_role(more, grammar::ItemRole::AfterItem);
  b.accept(more);
  b.call(b.rule_start(root), call, more, grammar::Guard::None, grammar::Count::One);
  b.call(more, call, more, grammar::Guard::BelowMax, grammar::Count::Increment);
  return root;
}

// tool_choice "auto": any text (every byte, no control token), EOS at any point, or from
// [TOOL_CALLS] on the calls of `calls` (a rule that starts with that token) and then EOS. The
// root may match nothing (an empty reply), which grammar::Builder allows only of a root that no
// rule calls.
uint32_t text_then_calls(grammar::Builder& b, uint32_t calls) {
  const uint32_t root = b.add_rule("reply or text");
  const uint32_t text = b.rule_start(root), end = b.add_position(root);
  b.byte_edge(text, 0x00, 0xFF, text);
  b.accept(text);
  b.set_text(text);
  b.call(text, calls, end);
  b.accept(end);
  return root;
}

}  // namespace

Constraint::Constraint(std::shared_ptr<const grammar::Grammar> grammar,
                       std::shared_ptr<const TokenTrie> trie, int32_t eos_id)
    : grammar_(std::move(grammar)), trie_(std::move(trie)), eos_id_(eos_id) {}
Constraint::~Constraint() = default;

uint32_t Constraint::min_length() const {
  return grammar_->rules[grammar_->root].min_length;
}

bool Constraint::compatible_with(const Tokenizer& tokenizer) const {
  const auto other = tokenizer.token_trie();
  return other == trie_ ||
         (other->vocab_size == trie_->vocab_size && other->fingerprint == trie_->fingerprint);
}

std::shared_ptr<const Constraint> Constraint::json_schema(const Tokenizer& tokenizer,
                                                          std::string_view schema_json) {
  json_schema::Schema schema;
  const uint32_t root = json_schema::compile(schema, schema_json);
  return json_output(tokenizer, schema, root);
}

std::shared_ptr<const Constraint> Constraint::json_object(const Tokenizer& tokenizer) {
  json_schema::Schema schema;
  const uint32_t any = schema.add(Node{.kind = Kind::Any});
  const uint32_t object = schema.add(Node{.kind = Kind::Object, .free_keys = true, .values = any});
  return json_output(tokenizer, schema, object);
}

std::shared_ptr<const Constraint> Constraint::tool_calls(const Tokenizer& tokenizer,
                                                         ChatTemplate tmpl,
                                                         std::span<const ChatTool> tools,
                                                         const ToolCallOptions& options) {
  const int version = chat_rules::version(tmpl);
  if (version == 1) throw Error("tool calls: the v1 template has no tool calls");
  json_schema::Schema schema;
  const std::vector<Function> fns = functions(schema, tools, options);
  const uint32_t max_calls = options.max_calls == 0 ? grammar::kInfinite : options.max_calls;
  grammar::Builder b;
  std::vector<uint32_t> argument_rules;  // per function
  uint32_t root =
      version <= 7 ? json_list_calls(b, schema, fns, version, max_calls,
                                     control_token(tokenizer, "[TOOL_CALLS]", tmpl), argument_rules)
                   : tagged_calls(b, schema, fns, tokenizer, tmpl, max_calls, argument_rules);
  if (options.text_first) root = text_then_calls(b, root);
  grammar::Grammar g = finish_schema(b, root);
  for (size_t i = 0; i < fns.size(); ++i)
    if (g.rules[argument_rules[i]].min_length == grammar::kInfinite)
      throw SchemaError(
          "", "", "tool '" + fns[i].name + "': JSON Schema: no arguments satisfy the parameters");
  check_satisfiable(g);
  return make(tokenizer, std::move(g));
}

}  // namespace brise
