#include "server.hpp"

#include <httplib.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>

#include "api.hpp"
#include "brise/chat.hpp"
#include "brise/error.hpp"
#include "brise/gguf.hpp"
#include "chat_page.hpp"
#include "connection_gate.hpp"
#include "http_head.hpp"
#include "responses.hpp"
#include "socket_stream.hpp"

namespace brise::serve {
namespace {

using std::chrono::milliseconds;

constexpr const char* kJson = "application/json";

// Compares without an early exit, so the time taken does not tell how much of a key matched.
bool same_key(const std::string& given, const std::string& key) {
  unsigned diff = given.size() == key.size() ? 0u : 1u;
  for (size_t i = 0; i < given.size(); ++i)
    diff |= static_cast<unsigned char>(given[i]) ^ static_cast<unsigned char>(key[i % key.size()]);
  return diff == 0;
}

// "Authorization: Bearer KEY", the scheme in any case (RFC 9110: schemes are case-insensitive).
bool authorized(const std::string& header, const std::string& key) {
  const std::string scheme = "bearer";
  if (header.size() <= scheme.size() + 1) return false;
  for (size_t i = 0; i < scheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(header[i])) != scheme[i]) return false;
  size_t at = scheme.size();
  if (header[at] != ' ') return false;
  while (at < header.size() && header[at] == ' ') ++at;
  return same_key(header.substr(at), key);
}

// /proc/meminfo's MemAvailable: what can be allocated without swapping (no limit when unknown).
uint64_t available_memory() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  while (meminfo >> key >> kib) {
    if (key == "MemAvailable:") return kib << 10;
    meminfo.ignore(64, '\n');
  }
  return UINT64_MAX;
}

std::string mib(uint64_t bytes) {
  return std::to_string((bytes + (1 << 20) - 1) >> 20) + " MiB";
}

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  if (e.status == 429 || e.status == 503) res.set_header("Retry-After", "1");
  if (e.status == 401) res.set_header("WWW-Authenticate", "Bearer");
  res.set_content(error_body(e).dump(-1, ' ', false, json::error_handler_t::replace), kJson);
}

}  // namespace

// httplib's server with brise's connection handling. httplib's accept loop hands each new
// connection to its task queue, which here passes it straight on to process_and_close_socket,
// which gives it to the connection gate (connection_gate.hpp): the gate holds every connection
// while its request arrives and hands it to a worker of a fixed pool once the request is whole, so
// stalled clients never hold a worker. A worker answers one request on a SocketStream (a
// deadline per request) and gives the connection back to the gate for the next. A request whose
// head is malformed or too large gets one error response, and the connection closes
// (http_head.hpp says why httplib does not do it).
class Server::Http : public httplib::Server {
 public:
  Http(const ServerOptions& o, std::function<void(int)> count_status)
      : o_(o),
        count_status_(std::move(count_status)),
        workers_(std::max<size_t>(o.http_threads, 4)),
        gate_(gate_limits(o), [this](ConnectionGate::Connection c) {
          workers_.enqueue([this, c]() mutable { answer(std::move(c)); });
        }) {
    new_task_queue = [] { return new HandOver; };
  }
  ~Http() override { close_connections(); }

  // Once httplib's accept loop has ended (stop()): closes the connections waiting in the gate and
  // lets the workers finish the requests they have. Idempotent.
  void close_connections() {
    gate_.stop();
    if (!workers_down_.exchange(true)) workers_.shutdown();
  }
  size_t open_connections() const { return gate_.open_connections(); }
  // httplib listens with a backlog of 5: a burst of clients connecting (a few hundred, as a
  // slowloris opens them) overflows it, and the kernel drops their SYNs, which the clients resend
  // only after a second. Linux lets a listening socket take a new backlog.
  void widen_backlog() { ::listen(svr_sock_, SOMAXCONN); }

 private:
  struct HandOver : httplib::TaskQueue {
    void enqueue(std::function<void()> fn) override { fn(); }
    void shutdown() override {}
  };
  static GateLimits gate_limits(const ServerOptions& o) {
    GateLimits l;
    l.max_connections = o.max_connections;
    l.max_header_bytes = o.max_header_bytes;
    l.request_timeout = o.request_timeout;
    l.idle_timeout = o.idle_timeout;
    return l;
  }

  bool process_and_close_socket(socket_t sock) override {
    gate_.adopt(sock);
    return true;
  }

  // Answers the request that has arrived on `c`, then gives the connection back to the gate
  // (keep-alive) or closes it.
  void answer(ConnectionGate::Connection c) {
    SocketStream stream(c.sock, o_.idle_timeout, o_.write_timeout);
    stream.preload(std::move(c.received));
    stream.start_request(c.deadline);
    SocketStream::set_current(&stream);
    bool keep = false;
    std::string_view head;
    const SocketStream::Head got = stream.peek_head(o_.max_header_bytes, head);
    if (got != SocketStream::Head::Incomplete) {
      const std::optional<ApiError> problem =
          got == SocketStream::Head::TooLarge
              ? ApiError(431, "the request line and headers are over " +
                                  std::to_string(o_.max_header_bytes) + " bytes")
              : head_problem(head);
      if (problem) {
        const std::string response = closing_error_response(*problem);
        stream.write(response.data(), response.size());
        count_status_(problem->status);
        drain(c.sock);
      } else {
        const bool last = ++c.requests >= keep_alive_max_count_ || svr_sock_ == INVALID_SOCKET;
        bool closed = false;
        keep = process_request(stream, last, closed, nullptr) && !closed && !last &&
               svr_sock_ != INVALID_SOCKET;
      }
    }
    SocketStream::set_current(nullptr);
    if (keep) {
      c.received = stream.take_unread();
      gate_.resume(std::move(c));
      return;
    }
    ::shutdown(c.sock, SHUT_RDWR);
    ::close(c.sock);
    gate_.closed();
  }
  // Closing a socket with bytes still unread sends a reset, which may destroy the response
  // before the client reads it: say we are done, and read what the client still sends (a
  // little, briefly).
  static void drain(socket_t sock) {
    ::shutdown(sock, SHUT_WR);
    char sink[4096];
    const auto until = std::chrono::steady_clock::now() + milliseconds(500);
    for (size_t total = 0; total < (size_t{1} << 20);) {
      pollfd p{sock, POLLIN, 0};
      const auto left =
          std::chrono::duration_cast<milliseconds>(until - std::chrono::steady_clock::now());
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) return;
      const ssize_t n = ::recv(sock, sink, sizeof sink, 0);
      if (n <= 0) return;
      total += static_cast<size_t>(n);
    }
  }
  const ServerOptions& o_;
  std::function<void(int)> count_status_;
  httplib::ThreadPool workers_;  // before gate_, whose handler queues on it
  std::atomic<bool> workers_down_{false};
  ConnectionGate gate_;
};

Server::Server(ServerOptions options)
    : options_(std::move(options)),
      http_(std::make_unique<Http>(options_, [this](int status) { count_status(status); })) {
  auto& h = *http_;
  h.set_payload_max_length(options_.max_body_bytes);
  h.set_keep_alive_timeout(std::max<time_t>(1, options_.idle_timeout.count() / 1000));
  h.set_tcp_nodelay(true);
  // Browser pages served from elsewhere (another port, a file) may call the API: CORS.
  h.set_default_headers({{"Access-Control-Allow-Origin", "*"}});
  routes();
  port_ = options_.port == 0 ? h.bind_to_any_port(options_.host)
                             : (h.bind_to_port(options_.host, options_.port) ? options_.port : -1);
  if (port_ <= 0)
    throw Error("cannot listen on " + options_.host + ":" + std::to_string(options_.port) +
                " (address in use, or not an address of this machine?)");
  h.widen_backlog();
  listener_ = std::thread([this] {
    http_->listen_after_bind();
    listener_returned_ = true;
  });
}

Server::~Server() {
  stop(milliseconds(0));
}

void Server::set_model(std::shared_ptr<const Model> model, std::string model_id,
                       SchedulerOptions options) {
  std::lock_guard lock(stop_mutex_);
  if (stopped_) return;
  if (!model->has_tokenizer())
    throw Error("the model file holds no tokenizer: brise serve needs one to read prompts");
  chat_template_ = options_.chat_template.value_or(detect_chat_template(model->tokenizer()));
  // The KV cache of every slot, whole, within the memory there is: refused here, at start, rather
  // than run out mid-request.
  const uint64_t weights = model->file().file_size();
  const uint64_t limit = options_.memory_limit_bytes;
  const uint64_t room = limit ? (limit > weights ? limit - weights : 0) : available_memory();
  // Without a context length, the model's (often 32k-128k positions) would reserve gigabytes per
  // slot: each slot holds default_context_length positions at most unless asked for more.
  memory_.context_capped_from = 0;
  const uint32_t model_context = model->config().context_length;
  if (!options.session.context_length && model_context > options_.default_context_length) {
    options.session.context_length = options_.default_context_length;
    memory_.context_capped_from = model_context;
  }
  const Session one_slot(model, options.session);
  const uint64_t kv = one_slot.kv_cache_max_bytes() * static_cast<uint64_t>(options.parallel);
  const uint64_t cache_ram = options.cache_ram_bytes;  // the prefix cache's bound, in host RAM
  if (kv + cache_ram > room)
    throw Error("the KV cache of " + std::to_string(options.parallel) + " slot(s) of " +
                std::to_string(one_slot.kv_capacity()) + " positions needs " + mib(kv) +
                (cache_ram ? " (and --cache-ram " + mib(cache_ram) + ")" : std::string()) +
                (limit ? ", more than the memory limit (" + mib(limit) + ") leaves beside the " +
                             mib(weights) + " of weights"
                       : ", more than this machine has available (" + mib(room) + ")") +
                ": lower --parallel, --ctx-size or --cache-ram, or use --kv-type q8_0");
  options.session.reserve_kv_cache = true;
  model_ = std::move(model);
  model_id_ = std::move(model_id);
  scheduler_ = std::make_unique<Scheduler>(model_, options);
  memory_.weights_bytes = weights;
  memory_.kv_cache_bytes = scheduler_->stats().kv_cache_max_bytes;
  memory_.cache_ram_bytes = cache_ram;
  memory_.slot_positions = one_slot.kv_capacity();
  ready_ = true;
}

void Server::stop(milliseconds grace) {
  std::unique_lock lock(stop_mutex_);
  if (stopped_) return;
  stopping_ = true;
  if (scheduler_) scheduler_->shutdown(grace);  // every job gets its last event
  // httplib stops writing streams once it stops: let them send their last event and [DONE].
  for (int i = 0; i < 200 && open_streams_ > 0; ++i) std::this_thread::sleep_for(milliseconds(10));
  // httplib's stop() acts only on a server already listening: stopped before its thread got
  // there, the server would then listen for ever and the join below never return (a server
  // destroyed right after it was made hung a test so). Wait for the listening to begin (or fail).
  while (!http_->is_running() && !listener_returned_) std::this_thread::sleep_for(milliseconds(1));
  http_->stop();
  if (listener_.joinable()) listener_.join();
  http_->close_connections();
  stopped_ = true;
  stopped_cv_.notify_all();
}

void Server::wait() {
  std::unique_lock lock(stop_mutex_);
  stopped_cv_.wait(lock, [&] { return stopped_; });
}

void Server::count_status(int status) {
  std::lock_guard lock(status_mutex_);
  ++responses_[status];
}

std::string Server::metrics() const {
  std::ostringstream m;
  const auto metric = [&](const char* name, const char* type, const char* help, auto value) {
    m << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n'
      << name << ' ' << value << '\n';
  };
  m << "# HELP brise_requests_total HTTP responses sent, by status.\n"
       "# TYPE brise_requests_total counter\n";
  {
    std::lock_guard lock(status_mutex_);
    for (const auto& [status, count] : responses_)
      m << "brise_requests_total{status=\"" << status << "\"} " << count << '\n';
  }
  metric("brise_ready", "gauge", "1 once the model is loaded.", ready_ ? 1 : 0);
  if (!ready_) return m.str();
  const SchedulerStats s = scheduler_->stats();
  metric("brise_queue_length", "gauge", "Requests waiting for a slot.", s.queued);
  metric("brise_slots_busy", "gauge", "Slots running a request.", s.busy);
  metric("brise_slots_total", "gauge", "Slots (--parallel).", s.slots);
  metric("brise_prompt_tokens_total", "counter", "Prompt tokens of admitted requests.",
         s.prompt_tokens);
  metric("brise_prompt_cached_tokens_total", "counter",
         "Prompt tokens whose KV entries were kept or copied, not prefilled.", s.cached_tokens);
  metric("brise_cache_ram_bytes", "gauge", "Bytes held by the --cache-ram prefix cache.",
         s.cache_ram_bytes);
  metric("brise_completion_tokens_total", "counter", "Tokens generated.", s.completion_tokens);
  metric("brise_prefill_tokens_total", "counter", "Prompt tokens fed through the model.",
         s.prefill_tokens);
  metric("brise_prefill_seconds_total", "counter", "Forward-pass time spent on prompt rows.",
         s.prefill_seconds);
  metric("brise_decode_tokens_total", "counter", "Generated tokens fed through the model.",
         s.decode_tokens);
  metric("brise_decode_seconds_total", "counter", "Forward-pass time spent on decode rows.",
         s.decode_seconds);
  metric("brise_weights_bytes", "gauge", "The model file, mapped.", memory_.weights_bytes);
  metric("brise_kv_cache_reserved_bytes", "gauge",
         "KV cache of every slot, reserved at start: the most it takes.", memory_.kv_cache_bytes);
  metric("brise_kv_cache_bytes", "gauge", "KV cache of every slot, allocated now.",
         s.kv_cache_bytes);
  metric("brise_forward_passes_total", "counter", "Batched forward passes.", s.passes);
  metric("brise_prefill_tokens_per_second", "gauge", "Prompt tokens per second of pass time.",
         s.prefill_seconds > 0 ? static_cast<double>(s.prefill_tokens) / s.prefill_seconds : 0.0);
  metric("brise_decode_tokens_per_second", "gauge", "Decode tokens per second of pass time.",
         s.decode_seconds > 0 ? static_cast<double>(s.decode_tokens) / s.decode_seconds : 0.0);
  return m.str();
}

void Server::routes() {
  auto& h = *http_;
  // Every response is counted by status, after it was sent; a stream counts itself when it ends
  // (499 when its client left before the end).
  h.set_logger([this](const httplib::Request&, const httplib::Response& res) {
    if (!res.is_chunked_content_provider_) count_status(res.status);
  });
  h.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;  // an API error already has its object
    const int status = res.status;
    std::string message = "HTTP " + std::to_string(status);
    if (status == 404) message = "no such endpoint: " + req.method + " " + req.path;
    if (status == 413) message = "the request body is too large";
    if (status == 400) message = "malformed HTTP request";
    send_error(res, ApiError(status, message));
  });
  h.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "internal error";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        send_error(res, ApiError(500, what));
      });
  // The API key (on every endpoint but /health and the chat page, which asks for the key) and
  // readiness (of /v1/*), before the handlers.
  h.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (req.method == "OPTIONS") return httplib::Server::HandlerResponse::Unhandled;  // no key
    const bool open = req.path == "/health" || (req.path == "/" && req.method == "GET");
    if (!options_.api_key.empty() && !open) {
      const std::string auth = req.get_header_value("Authorization");
      if (!authorized(auth, options_.api_key)) {
        send_error(res, ApiError(401,
                                 auth.empty() ? "missing API key (Authorization: Bearer ...)"
                                              : "incorrect API key",
                                 {}, "invalid_api_key"));
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    if (req.path.rfind("/v1/", 0) == 0 && (!ready_ || stopping_)) {
      send_error(res, ApiError(503, stopping_ ? "the server is shutting down"
                                              : "the model is still loading"));
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });

  const auto not_allowed = [](const char* allow) {
    return [allow](const httplib::Request& req, httplib::Response& res) {
      res.set_header("Allow", allow);
      send_error(res, ApiError(405, "method " + req.method + " is not allowed on " + req.path +
                                        " (use " + allow + ")"));
    };
  };
  for (const char* path : {"/v1/chat/completions", "/v1/completions"}) {
    h.Get(path, not_allowed("POST"));
    h.Put(path, not_allowed("POST"));
    h.Delete(path, not_allowed("POST"));
    h.Patch(path, not_allowed("POST"));
  }
  for (const char* path : {"/", "/health", "/metrics", "/v1/models"}) {
    h.Post(path, not_allowed("GET"));
    h.Put(path, not_allowed("GET"));
    h.Delete(path, not_allowed("GET"));
    h.Patch(path, not_allowed("GET"));
  }

  // CORS preflight: what a browser asks before a cross-origin POST with JSON and a key.
  h.Options(R"(/.*)", [](const httplib::Request&, httplib::Response& res) {
    res.status = 204;
    res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type");
    res.set_header("Access-Control-Max-Age", "86400");
  });
  h.Get("/", [](const httplib::Request&, httplib::Response& res) {
    const auto page = chat_page();
    res.set_content(page.data(), page.size(), "text/html; charset=utf-8");
  });
  h.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    if (ready_ && !stopping_) {
      res.set_content(R"({"status":"ok"})", kJson);
    } else {
      res.status = 503;
      res.set_header("Retry-After", "1");
      res.set_content(stopping_ ? R"({"status":"stopping"})" : R"({"status":"loading"})", kJson);
    }
  });
  h.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics(), "text/plain; version=0.0.4");
  });
  h.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(models_json(nullptr), kJson);
  });
  h.Get(R"(/v1/models/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
    const std::string name = req.matches[1];
    try {
      check_model(name);
    } catch (const ApiError& e) {
      return send_error(res, e);
    }
    res.set_content(models_json(&name), kJson);
  });

  const auto completion = [this](Endpoint endpoint) {
    return [this, endpoint](const httplib::Request& req, httplib::Response& res) {
      try {
        serve_completion(static_cast<int>(endpoint), req, res);
      } catch (const ApiError& e) {
        send_error(res, e);
      }
    };
  };
  h.Post("/v1/chat/completions", completion(Endpoint::ChatCompletions));
  h.Post("/v1/completions", completion(Endpoint::Completions));
}

// The model list (or one model's object): the model's file name and each --alias, with the chat
// template requests go through.
std::string Server::models_json(const std::string* only) const {
  const auto entry = [&](const std::string& id) {
    return json{{"id", id},
                {"object", "model"},
                {"created", 0},
                {"owned_by", "brise"},
                {"root", model_id_},
                {"chat_template", chat_template_name(chat_template_)},
                {"chat_template_source", chat_template_source()}};
  };
  if (only) return entry(*only).dump();
  json data = json::array({entry(model_id_)});
  for (const std::string& alias : options_.aliases) data.push_back(entry(alias));
  return json{{"object", "list"}, {"data", data}}.dump();
}

}  // namespace brise::serve
