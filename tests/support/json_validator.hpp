// An independent JSON Schema validator for the subset brise's constrained decoding supports
// (brise/constraint.hpp): type, properties, required, additionalProperties, enum, const, items,
// minItems, maxItems, anyOf, $ref ("#", "#/$defs/NAME", "#/definitions/NAME"), boolean schemas,
// minimum, maximum, exclusiveMinimum, exclusiveMaximum (numbers, or draft 4's booleans),
// minLength, maxLength (in code points).
// Written from the JSON Schema specification (draft 2020-12, section 10 and the validation
// vocabulary), on nlohmann::json values, sharing no code with engine/generate/: the oracle that
// constrained outputs are checked against.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace brise::test {

// Why `instance` does not satisfy `schema` (a JSON pointer into the instance and the keyword),
// or nullopt when it does. Throws std::invalid_argument for a keyword outside the subset.
std::optional<std::string> json_schema_violation(const nlohmann::json& instance,
                                                 const nlohmann::json& schema);

// Parses `text` as strict JSON (one value, UTF-8, no trailing data) and validates it: the
// problem, or nullopt when the text is a valid instance.
std::optional<std::string> json_text_violation(const std::string& text,
                                               const nlohmann::json& schema);

}  // namespace brise::test
