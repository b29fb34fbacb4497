// Constrained decoding for brise serve: response_format (json_object, json_schema) and forced
// tool calls (tool_choice "required" or a named function; "auto" with parallel_tool_calls false,
// at most one call) as a brise::Constraint on the generation options.
#pragma once

#include "api.hpp"
#include "brise/chat.hpp"
#include "brise/generate.hpp"
#include "brise/tokenizer.hpp"

namespace brise::serve {

// Sets options.constraint for what `r` asks (nothing for text answers, tool_choice none, and
// auto with parallel calls allowed). ApiError 400 naming the field for a schema the grammar does
// not take (its keyword and place in the message).
void apply_constraint(const ApiRequest& r, const Tokenizer& tokenizer, ChatTemplate tmpl,
                      GenerateOptions& options);

}  // namespace brise::serve
