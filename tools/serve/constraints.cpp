#include "constraints.hpp"

namespace brise::serve {

// The seam for grammar-constrained sampling (issue 21 §3, another branch): until it lands, what
// needs it is refused by name rather than run unconstrained, which would answer with prose where
// the client asked for JSON or a call.
void apply_constraint(const ApiRequest& r, const Tokenizer&, ChatTemplate, GenerateOptions&) {
  if (r.response_format != ResponseFormat::Text)
    throw ApiError(400,
                   "'response_format' json_object and json_schema need constrained decoding, "
                   "which this brise serve does not have yet: use {\"type\": \"text\"}",
                   "response_format");
  if (r.tool_choice == ToolChoice::Required || r.tool_choice == ToolChoice::Function)
    throw ApiError(400,
                   "'tool_choice' \"required\" or a named function needs constrained decoding, "
                   "which this brise serve does not have yet: use \"auto\" (the model may call) "
                   "or \"none\"",
                   "tool_choice");
}

}  // namespace brise::serve
