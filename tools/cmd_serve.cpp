// brise serve -m M.gguf [--host H] [--port P] [--parallel N] ...: an OpenAI-compatible HTTP server
// (tools/serve/). SIGINT/SIGTERM stop it: no new requests, running ones get a few seconds to
// finish, exit 0.
#include <pthread.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <thread>

#include "brise/chat.hpp"
#include "brise/error.hpp"
#include "brise/scheduler.hpp"
#include "cli_args.hpp"
#include "commands.hpp"
#include "serve/server.hpp"
#include "session_args.hpp"

namespace brise::cli {

int cmd_serve(const Args& args) {
  SessionArgs session_args;
  serve::ServerOptions server;
  std::string host = server.host;
  int64_t port = 8080, parallel = 1, queue = 64, max_body = int64_t{1} << 20, timeout = 10,
          grace = 3, max_connections = static_cast<int64_t>(server.max_connections);
  int64_t memory_limit_mib = 0;
  int64_t prefill_chunk = 64, max_tokens_default = server.max_tokens_default, cache_ram_mb = 0;
  bool no_prefix_cache = false;
  std::string api_key;
  std::optional<std::string> template_name;
  ArgParser p(
      "serve", "-m MODEL.gguf [options]",
      "Serves OpenAI's API (POST /v1/chat/completions, POST /v1/completions, GET /v1/models)\n"
      "and a chat page (GET /) over HTTP, plus GET /health and GET /metrics (Prometheus).\n"
      "Up to --parallel requests run at once, batched into one forward pass per step;\n"
      "a request's output does not depend on the others. SIGINT/SIGTERM stop it.\n"
      "Each slot's KV cache (--ctx-size positions; default: the model's context, at most\n"
      "4096) is reserved at start, and the start log states the memory it takes.");
  session_args.add_to(p);
  p.option("--host", &host, "ADDR", "address to listen on (default: 127.0.0.1, this machine only)");
  p.option("--port", &port, "PORT", "TCP port (default: 8080; 0: any free port)", 0, 65535);
  p.option("--parallel", &parallel, "N", "requests run at once (default: 1)", 1, 256);
  p.option("--queue", &queue, "N", "requests that may wait for a slot; more get 429 (default: 64)",
           0, 1 << 20);
  p.option("--api-key", &api_key, "KEY",
           "require 'Authorization: Bearer KEY' on every endpoint but /health and the chat page");
  p.option_list("--alias", &server.aliases, "NAME",
                "another name requests may give as 'model' (repeatable)");
  p.option("--template", &template_name, "vN",
           "chat template v1, v2, v3, v7, v11 or v13 (default: the vocabulary's, as brise chat)");
  p.option("--max-tokens-default", &max_tokens_default, "N",
           "tokens a chat answer may have when the request sets no max_tokens (default: 4096; "
           "at most the context)",
           1, 1 << 20);
  p.option("--max-body", &max_body, "BYTES", "largest request body (default: 1 MiB)", 1,
           int64_t{1} << 30);
  p.option("--timeout", &timeout, "SECONDS",
           "to receive a whole request, from its first byte (default: 10)", 1, 3600);
  p.option("--max-connections", &max_connections, "N",
           "connections open at once; when all are taken, the one that has waited longest for "
           "its request is dropped (default: 512)",
           8, 1 << 20);
  p.option("--memory-limit", &memory_limit_mib, "MIB",
           "refuse to start when the weights and the KV cache of every slot (reserved whole at "
           "start) need more (default: 0, the KV cache within the memory available)",
           0, int64_t{1} << 40);
  p.option("--prefill-chunk", &prefill_chunk, "N",
           "prompt tokens per step while other requests decode (default: 64)", 1, 1 << 16);
  p.option("--cache-ram", &cache_ram_mb, "MB",
           "host-RAM cache (LRU) of the KV entries of slots about to be overwritten "
           "(default: 0, none)",
           0, int64_t{1} << 30);
  p.flag("--no-prefix-cache", &no_prefix_cache,
         "every request prefills its whole prompt: no reuse of what slots or --cache-ram hold");
  p.option("--grace", &grace, "SECONDS",
           "running requests may finish after a stop signal (default: 3)", 0, 3600);
  if (!p.parse(args)) return 0;
  if (api_key.empty() && std::getenv("BRISE_API_KEY")) api_key = std::getenv("BRISE_API_KEY");
  if (template_name) {
    try {
      server.chat_template = chat_template_from_name(*template_name);
    } catch (const Error& e) {
      throw UsageError(std::string("--template: ") + e.what());
    }
  }
  server.max_tokens_default = static_cast<uint32_t>(max_tokens_default);

  server.host = host;
  server.port = static_cast<int>(port);
  server.api_key = api_key;
  server.max_body_bytes = static_cast<size_t>(max_body);
  server.request_timeout = std::chrono::seconds(timeout);
  server.max_connections = static_cast<size_t>(max_connections);
  server.memory_limit_bytes = static_cast<uint64_t>(memory_limit_mib) << 20;
  server.http_threads = std::max<size_t>(32, 2 * static_cast<size_t>(parallel) + 16);
  SchedulerOptions scheduling;
  scheduling.parallel = static_cast<int>(parallel);
  scheduling.queue_limit = static_cast<size_t>(queue);
  scheduling.prefill_chunk = static_cast<uint32_t>(prefill_chunk);
  scheduling.prefill_chunk_alone = static_cast<uint32_t>(session_args.chunk);
  scheduling.session = session_args.session_options();
  scheduling.threads = static_cast<int>(session_args.threads);
  scheduling.prefix_reuse = !no_prefix_cache;
  scheduling.cache_ram_bytes = static_cast<uint64_t>(cache_ram_mb) << 20;

  // Signals go to one thread that waits for them; every other thread (created after this) has
  // them blocked.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  serve::Server http(server);
  std::printf("brise serve: listening on http://%s:%d\n", host.c_str(), http.port());
  std::fflush(stdout);
  std::thread signals([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    std::fprintf(stderr, "brise serve: %s, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    http.stop(std::chrono::seconds(grace));
  });

  try {
    const auto model = session_args.load_model();
    // The vocabulary's byte trie for constrained decoding (response_format, forced tool calls),
    // built now, while /health still answers 503, rather than by the first request that needs it.
    const auto trie_start = std::chrono::steady_clock::now();
    (void)model->tokenizer().token_trie();
    std::fprintf(
        stderr, "brise serve: token trie for constrained decoding built in %.0f ms\n",
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - trie_start)
            .count());
    const std::string id = std::filesystem::path(session_args.model).stem().string();
    http.set_model(model, id, scheduling);
    std::fprintf(stderr, "brise serve: model '%s' ready, %lld slot(s)\n", id.c_str(),
                 static_cast<long long>(parallel));
    // The peak: requests never allocate KV cache (it is all reserved), so memory stays here
    // plus the forward pass's scratch, which --prefill-chunk and --parallel bound.
    const serve::Server::Memory memory = http.memory();  // none when stopped while loading
    if (memory.weights_bytes) {
      const auto mib = [](uint64_t bytes) { return static_cast<double>(bytes) / (1 << 20); };
      std::fprintf(stderr,
                   "brise serve: memory: %.1f MiB of weights (the file, mapped) + %.1f MiB of KV "
                   "cache (%lld slot(s) x %u positions, %s, reserved) + %.1f MiB of prefix "
                   "cache (--cache-ram) = %.1f MiB at most, besides the forward pass's scratch\n",
                   mib(memory.weights_bytes), mib(memory.kv_cache_bytes),
                   static_cast<long long>(parallel), memory.slot_positions,
                   std::string(tensor_type_name(scheduling.session.kv_type)).c_str(),
                   mib(memory.cache_ram_bytes),
                   mib(memory.weights_bytes + memory.kv_cache_bytes + memory.cache_ram_bytes));
    }
    if (memory.context_capped_from)
      std::fprintf(stderr,
                   "brise serve: each slot holds %u positions of the model's context of %u "
                   "(--ctx-size sets it)\n",
                   memory.slot_positions, memory.context_capped_from);
    // GGUF chat templates (Jinja) are not read: brise formats Mistral's own way (README).
    std::fprintf(stderr, "brise serve: chat template %s (%s)\n",
                 std::string(chat_template_name(http.chat_template())).c_str(),
                 server.chat_template ? "--template" : "chosen from the vocabulary");
  } catch (...) {
    pthread_kill(signals.native_handle(), SIGTERM);  // end the signal thread, then fail
    signals.join();
    throw;
  }
  http.wait();
  signals.join();
  std::fprintf(stderr, "brise serve: stopped\n");
  return 0;
}

}  // namespace brise::cli
