// brise serve's HTTP side: OpenAI's endpoints over a Scheduler, on cpp-httplib.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "brise/chat.hpp"
#include "brise/model.hpp"
#include "brise/scheduler.hpp"

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace brise::serve {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: any free port (port() tells which)
  // When set, every endpoint but /health and the chat page (GET /) needs
  // "Authorization: Bearer <key>" (the scheme in any case).
  std::string api_key;
  std::vector<std::string> aliases;           // other names requests may give as `model`
  std::optional<ChatTemplate> chat_template;  // nullopt: detect_chat_template's choice
  uint32_t max_tokens_default = 4096;         // chat requests without max_tokens
  size_t max_body_bytes = size_t{1} << 20;
  size_t max_header_bytes = 16384;                   // request line and headers; more is a 431
  std::chrono::milliseconds request_timeout{10000};  // to receive a whole request
  std::chrono::milliseconds idle_timeout{5000};      // between reads, and keep-alive waits
  std::chrono::milliseconds write_timeout{10000};
  size_t http_threads = 32;  // requests answered at once (the workers); streams hold one each
  // Connections open at once (waiting for a request or being answered); when a new one comes
  // and all are taken, the one that has waited longest for its request is dropped.
  size_t max_connections = 512;
  // The memory brise serve may take: the weights (the model file's size, mapped) and the KV
  // cache of every slot, reserved whole at start. 0: what the machine has available
  // (/proc/meminfo's MemAvailable, after the model is loaded) for the KV cache.
  uint64_t memory_limit_bytes = 0;
  // Positions of each slot when the scheduler's SessionOptions give no context length: the
  // model's context, at most this.
  uint32_t default_context_length = 4096;
};

class Server {
 public:
  // Binds the socket (brise::Error when it cannot) and starts serving: /health answers 503 and
  // the API 503 with Retry-After until set_model() is called.
  explicit Server(ServerOptions options);
  ~Server();  // stop()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  int port() const { return port_; }
  // The chat template of the model (after set_model), and why: "detected" (the vocabulary's, by
  // detect_chat_template) or "chosen" (ServerOptions::chat_template).
  ChatTemplate chat_template() const { return chat_template_; }
  const char* chat_template_source() const {
    return options_.chat_template ? "chosen" : "detected";
  }
  // The model is loaded: `model_id` is the name /v1/models lists and requests may ask for. Every
  // slot's KV cache is reserved whole here (SessionOptions::reserve_kv_cache), so requests never
  // allocate KV memory; brise::Error when it does not fit in ServerOptions::memory_limit_bytes
  // (or the memory available). Without SessionOptions::context_length, each slot holds the
  // model's context up to default_context_length positions (Memory says so).
  void set_model(std::shared_ptr<const Model> model, std::string model_id,
                 SchedulerOptions options);
  // What the server's memory is made of (after set_model): it never takes more KV cache than
  // this, whatever the requests.
  struct Memory {
    uint64_t weights_bytes = 0;    // the model file, mapped
    uint64_t kv_cache_bytes = 0;   // every slot's, reserved at start
    uint64_t cache_ram_bytes = 0;  // the most the prefix cache in host RAM holds (--cache-ram)
    uint32_t slot_positions = 0;   // positions the largest layer of a slot holds
    // Not 0: the model's context, longer than ServerOptions::default_context_length, which each
    // slot holds instead (no context length was given).
    uint32_t context_capped_from = 0;
  };
  Memory memory() const { return memory_; }
  // Stops accepting requests, lets running ones finish for `grace` (then ends them with an
  // error), closes the listener and waits for the HTTP threads. Idempotent.
  void stop(std::chrono::milliseconds grace = std::chrono::milliseconds(2000));
  // Blocks until stop() was called and has finished.
  void wait();

 private:
  class Http;
  void routes();
  void serve_completion(int endpoint, const httplib::Request& req, httplib::Response& res);
  void check_model(const std::string& requested) const;
  std::string models_json(const std::string* only) const;
  std::string metrics() const;
  void count_status(int status);

  ServerOptions options_;
  std::unique_ptr<Http> http_;
  int port_ = 0;
  std::thread listener_;
  std::atomic<bool> listener_returned_{false};  // listen_after_bind has returned
  std::shared_ptr<const Model> model_;
  std::string model_id_;
  ChatTemplate chat_template_ = ChatTemplate::MistralV1;
  Memory memory_;
  std::unique_ptr<Scheduler> scheduler_;
  std::atomic<bool> ready_{false}, stopping_{false};
  std::atomic<int> open_streams_{0};  // streaming responses not yet fully written
  std::mutex stop_mutex_;
  bool stopped_ = false;
  std::condition_variable stopped_cv_;
  mutable std::mutex status_mutex_;
  std::map<int, uint64_t> responses_;  // by HTTP status
};

}  // namespace brise::serve
