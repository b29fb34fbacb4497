// An example program outside the brise tree, built against an installed brise with
// find_package(brise) (see CMakeLists.txt here): loads a model and streams a greedy
// continuation of a prompt, then runs the same prompt as a job of a brise::Scheduler beside
// another one and checks that it gives the same text.
//
//   consumer MODEL.gguf [PROMPT] [N_TOKENS]
#include <brise/error.hpp>
#include <brise/generate.hpp>
#include <brise/model.hpp>
#include <brise/scheduler.hpp>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL.gguf [PROMPT] [N_TOKENS]\n", argv[0]);
    return 2;
  }
  try {
    auto model = brise::Model::load(argv[1]);
    brise::Session session(model, {.prefill_chunk = 64});
    const std::string prompt = argc > 2 ? argv[2] : "Once upon a time";
    brise::GenerateOptions options;
    options.max_tokens = argc > 3 ? static_cast<uint32_t>(std::stoul(argv[3])) : 16;
    options.sampling.temperature = 0;  // greedy
    const auto ids = model->tokenizer().encode(prompt, /*add_bos=*/true);
    std::fputs(prompt.c_str(), stdout);
    const auto result = brise::generate(session, ids, options, [](std::string_view text) {
      std::fwrite(text.data(), 1, text.size(), stdout);
      return true;
    });
    std::printf("\n[%zu tokens, decode %.1f tok/s]\n", result.generated_ids.size(),
                result.decode_tok_s());

    // Continuous batching: two jobs share each forward pass; each gives generate()'s text.
    brise::Scheduler scheduler(model, {.parallel = 2});
    auto job = scheduler.submit(ids, options);
    auto other = scheduler.submit(model->tokenizer().encode("Another prompt", true), options);
    std::string text;
    brise::JobEvent e;
    while ((e = job->next()).kind == brise::JobEvent::Kind::Text) text += e.text;
    if (e.kind != brise::JobEvent::Kind::Done || text != result.text) {
      std::fprintf(stderr, "error: the scheduler's job gave other text than generate()\n");
      return 1;
    }
    std::printf("[scheduler: the same %u tokens]\n", e.usage.completion_tokens);
  } catch (const brise::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
