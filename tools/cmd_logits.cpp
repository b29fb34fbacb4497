// brise logits -m M.gguf --ids "1 403 407" -o OUT.f32: the logits after every token, as raw
// little-endian f32 [T, vocab].
#include <bit>
#include <cstdio>
#include <cstring>
#include <vector>

#include "brise/error.hpp"
#include "brise/output_file.hpp"
#include "cli_args.hpp"
#include "commands.hpp"
#include "session_args.hpp"

namespace brise::cli {

int cmd_logits(const Args& args) {
  SessionArgs session_args;
  std::string ids_text, output;
  ArgParser p("logits", "-m MODEL.gguf --ids \"1 403 407 ...\" -o OUT.f32 [options]",
              "Feeds the token ids at positions 0..T-1 of one sequence and writes the logits\n"
              "after each one: raw little-endian float32, shape [T, vocab], row t = logits after\n"
              "ids[t] (the prediction for position t+1). The file appears only when complete.");
  session_args.add_to(p);
  p.option("--ids", &ids_text, "IDS", "token ids, separated by spaces or commas (required)");
  p.option("-o,--output", &output, "OUT.f32", "file to write (required)");
  if (!p.parse(args)) return 0;
  const SessionOptions session_options = session_args.session_options();
  if (ids_text.empty()) throw UsageError("missing --ids");
  if (output.empty()) throw UsageError("missing -o OUT.f32");
  const std::vector<int32_t> ids = parse_id_list(ids_text, "--ids");
  if (ids.empty()) throw UsageError("--ids holds no token id");

  const auto model = session_args.load_model();
  const uint32_t vocab = model->config().vocab_size;
  for (size_t i = 0; i < ids.size(); ++i)
    if (static_cast<uint32_t>(ids[i]) >= vocab)
      throw Error("--ids: token id " + std::to_string(ids[i]) + " at index " + std::to_string(i) +
                  " is outside the vocabulary (0.." + std::to_string(vocab - 1) + ")");

  Session session(model, session_options);
  OutputFile out(output);
  std::vector<float> swapped;
  session.prefill_all_logits(ids, [&](size_t, std::span<const float> row) {
    if constexpr (std::endian::native == std::endian::little) {
      out.write(std::as_bytes(row));
    } else {
      swapped.resize(row.size());
      for (size_t i = 0; i < row.size(); ++i) {
        uint32_t bits;
        std::memcpy(&bits, &row[i], 4);
        bits = __builtin_bswap32(bits);
        std::memcpy(&swapped[i], &bits, 4);
      }
      out.write(std::as_bytes(std::span<const float>(swapped)));
    }
  });
  out.commit();
  std::fprintf(stderr, "brise logits: wrote [%zu, %u] float32 to %s\n", ids.size(), vocab,
               output.c_str());
  return 0;
}

}  // namespace brise::cli
