// brise generate -m M.gguf -p PROMPT [-n N] [sampling options] [--json-schema FILE.json |
// --json-object] [--json] ...
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "brise/constraint.hpp"
#include "brise/error.hpp"
#include "cli_args.hpp"
#include "commands.hpp"
#include "generate_stream.hpp"
#include "session_args.hpp"
#include "text_file.hpp"

namespace brise::cli {

int cmd_generate(const Args& args) {
  SessionArgs session_args;
  SamplingArgs sampling_args;
  std::string prompt;
  int64_t n_predict = 128;
  std::vector<std::string> stop_id_args, stop_strings;
  bool no_bos = false, json = false, echo = false, json_object = false;
  std::optional<std::string> schema_file;
  ArgParser p("generate", "-m MODEL.gguf -p PROMPT [options]",
              "Generates text that continues PROMPT, streaming it to stdout, then prints the\n"
              "prefill and decode speed to stderr. Generation stops at EOS, at a --stop-id or\n"
              "--stop string, after -n tokens, or when a full-attention context is full.");
  session_args.add_to(p);
  p.option("-p,--prompt", &prompt, "PROMPT", "text to continue (default: empty, i.e. BOS alone)");
  p.option("-n,--n-predict", &n_predict, "N", "most tokens to generate (default: 128)", 0,
           UINT32_MAX);
  sampling_args.add_to(p);
  p.option_list("--stop-id", &stop_id_args, "ID",
                "also stop when this token id is generated (repeatable; e.g. 1 = BOS ends a\n"
                "      stories260k story)");
  p.option_list("--stop", &stop_strings, "TEXT",
                "stop when the text contains TEXT, which is cut (repeatable)");
  p.option("--json-schema", &schema_file, "FILE.json",
           "constrain the output to JSON that satisfies this JSON Schema (the subset of\n"
           "      brise/constraint.hpp; other keywords are refused by name)");
  p.flag("--json-object", &json_object, "constrain the output to a JSON object");
  p.flag("--no-bos", &no_bos, "do not start the prompt with BOS");
  p.flag("--echo", &echo, "print the prompt before the generated text");
  p.flag("--json", &json,
         "print nothing while generating, then one JSON object: prompt_ids, generated_ids, "
         "text,\n      prefill_tok_s, decode_tok_s, stop_reason, seed");
  if (!p.parse(args)) return 0;

  const SessionOptions session_options = session_args.session_options();
  GenerateOptions options = sampling_args.generate_options(n_predict);
  options.stop_strings = stop_strings;
  for (const auto& s : stop_id_args) {
    const auto ids = parse_id_list(s, "--stop-id");
    options.stop_ids.insert(options.stop_ids.end(), ids.begin(), ids.end());
  }

  if (schema_file && json_object)
    throw UsageError("--json-schema and --json-object cannot be used together");

  const auto model = session_args.load_model();
  const Tokenizer& tokenizer = model->tokenizer();
  if (schema_file) {
    try {
      options.constraint = Constraint::json_schema(tokenizer, read_text_file(*schema_file));
    } catch (const Error& e) {
      throw Error(*schema_file + ": " + e.what());
    }
  } else if (json_object) {
    options.constraint = Constraint::json_object(tokenizer);
  }
  for (int32_t id : options.stop_ids)
    if (static_cast<size_t>(id) >= tokenizer.vocab_size())
      throw Error("--stop-id " + std::to_string(id) + " is outside the vocabulary (0.." +
                  std::to_string(tokenizer.vocab_size() - 1) + ")");
  const std::vector<int32_t> prompt_ids = tokenizer.encode(prompt, !no_bos);
  if (prompt_ids.empty())
    throw Error("the prompt is empty and --no-bos leaves no token to start from");

  Session session(model, session_options);
  if (echo && !json) write_stdout(tokenizer.decode(prompt_ids));
  const auto result =
      generate_to_stdout(session, prompt_ids, options, json ? Stream::Quiet : Stream::Text);

  if (json) {
    nlohmann::json out;
    out["prompt_ids"] = result.prompt_ids;
    out["generated_ids"] = result.generated_ids;
    out["text"] = result.text;
    out["prefill_tok_s"] = result.prefill_tok_s();
    out["decode_tok_s"] = result.decode_tok_s();
    out["stop_reason"] = std::string(stop_reason_name(result.stop_reason));
    out["seed"] = options.sampling.seed;
    std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    if (result.text.empty() || result.text.back() != '\n') write_stdout("\n");
    std::fprintf(stderr,
                 "brise generate: prompt %zu tokens in %.3f s (%.1f tok/s), generated %zu tokens "
                 "(%u decoded in %.3f s, %.1f tok/s), stop: %.*s, seed %llu\n",
                 result.prompt_ids.size(), result.prefill_seconds, result.prefill_tok_s(),
                 result.generated_ids.size(), result.decoded_tokens, result.decode_seconds,
                 result.decode_tok_s(),
                 static_cast<int>(stop_reason_name(result.stop_reason).size()),
                 stop_reason_name(result.stop_reason).data(),
                 static_cast<unsigned long long>(options.sampling.seed));
  }
  return 0;
}

}  // namespace brise::cli
