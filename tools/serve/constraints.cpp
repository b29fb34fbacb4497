#include "constraints.hpp"

#include "brise/constraint.hpp"

namespace brise::serve {

void apply_constraint(const ApiRequest& r, const Tokenizer& tokenizer, ChatTemplate tmpl,
                      GenerateOptions& options) {
  // The constraint is part of each job's options: its mask depends on nothing but the job's own
  // tokens, so a constrained answer is the same alone and in a batch.
  if (r.response_format == ResponseFormat::JsonObject) {
    options.constraint = Constraint::json_object(tokenizer);
  } else if (r.response_format == ResponseFormat::JsonSchema) {
    try {
      options.constraint = Constraint::json_schema(tokenizer, r.json_schema);
    } catch (const SchemaError& e) {
      throw ApiError(400, std::string("'response_format.json_schema.schema': ") + e.what(),
                     "response_format.json_schema.schema");
    }
  } else if (r.tool_choice == ToolChoice::Required || r.tool_choice == ToolChoice::Function ||
             (r.tool_choice == ToolChoice::Auto && !r.parallel_tool_calls &&
              !r.chat.tools.empty() && tokenizer.find_special("[TOOL_CALLS]") >= 0)) {
    // "auto" with parallel_tool_calls false: free text until the model writes [TOOL_CALLS], then
    // exactly one call and the end (without that token the model cannot call at all).
    ToolCallOptions calls;
    if (r.tool_choice == ToolChoice::Function) calls.function = r.tool_function;
    calls.max_calls = r.parallel_tool_calls ? 0 : 1;
    calls.text_first = r.tool_choice == ToolChoice::Auto;
    try {
      options.constraint = Constraint::tool_calls(tokenizer, tmpl, r.chat.tools, calls);
    } catch (const SchemaError& e) {
      throw ApiError(400, std::string("'tools': ") + e.what(), "tools");
    } catch (const Error& e) {
      throw ApiError(400,
                     std::string("'tool_choice' cannot force a call with this model: ") + e.what(),
                     "tool_choice");
    }
  }
}

}  // namespace brise::serve
