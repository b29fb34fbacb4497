#include "server.hpp"

#include <httplib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ctime>
#include <random>
#include <sstream>

#include "api.hpp"
#include "brise/chat.hpp"
#include "brise/error.hpp"
#include "chat_page.hpp"
#include "socket_stream.hpp"

namespace brise::serve {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

constexpr const char* kJson = "application/json";

std::string random_id(const char* prefix) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  static const char digits[] = "0123456789abcdef";
  std::string id = prefix;
  for (int i = 0; i < 24; ++i) id += digits[rng() % 16];
  return id;
}

// Compares without an early exit, so the time taken does not tell how much of a key matched.
bool same_key(const std::string& given, const std::string& key) {
  unsigned diff = given.size() == key.size() ? 0u : 1u;
  for (size_t i = 0; i < given.size(); ++i)
    diff |= static_cast<unsigned char>(given[i]) ^ static_cast<unsigned char>(key[i % key.size()]);
  return diff == 0;
}

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  if (e.status == 429 || e.status == 503) res.set_header("Retry-After", "1");
  if (e.status == 401) res.set_header("WWW-Authenticate", "Bearer");
  res.set_content(error_body(e).dump(-1, ' ', false, json::error_handler_t::replace), kJson);
}

json usage_json(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", u.cached_tokens}}}};
}

std::string sse(const json& j) {
  return "data: " + j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
}

// One request's response objects, in OpenAI's shapes for its endpoint.
struct Shapes {
  bool chat;
  std::string id, model;
  int64_t created = static_cast<int64_t>(std::time(nullptr));

  json base(const char* object) const {
    return {{"id", id},
            {"object", object},
            {"created", created},
            {"model", model},
            {"system_fingerprint", "brise"}};
  }
  json whole(const std::string& text, bool length, const Usage& u) const {
    json choice = {
        {"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish_reason_name(length)}};
    if (chat)
      choice["message"] = {{"role", "assistant"}, {"content", text}, {"refusal", nullptr}};
    else
      choice["text"] = text;
    json j = base(chat ? "chat.completion" : "text_completion");
    j["choices"] = json::array({choice});
    j["usage"] = usage_json(u);
    return j;
  }
  // A chunk with a text piece (or the role, or nothing) and maybe the finish reason.
  json chunk(const std::string* piece, bool role, const char* finish, bool usage_field) const {
    json choice = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", nullptr}};
    if (finish) choice["finish_reason"] = finish;
    if (chat) {
      json delta = json::object();
      if (role) delta["role"] = "assistant";
      if (piece)
        delta["content"] = *piece;
      else if (role)
        delta["content"] = "";
      choice["delta"] = delta;
    } else {
      choice["text"] = piece ? *piece : "";
    }
    json j = base(chat ? "chat.completion.chunk" : "text_completion");
    j["choices"] = json::array({choice});
    if (usage_field) j["usage"] = nullptr;
    return j;
  }
  json usage_chunk(const Usage& u) const {
    json j = base(chat ? "chat.completion.chunk" : "text_completion");
    j["choices"] = json::array();
    j["usage"] = usage_json(u);
    return j;
  }
};

}  // namespace

// httplib's server with brise's connection handling (SocketStream: a deadline per request).
class Server::Http : public httplib::Server {
 public:
  explicit Http(const ServerOptions& o) : o_(o) {}

 private:
  bool process_and_close_socket(socket_t sock) override {
    SocketStream stream(sock, o_.idle_timeout, o_.write_timeout);
    SocketStream::set_current(&stream);
    bool ok = false;
    for (size_t left = keep_alive_max_count_; left > 0; --left) {
      if (!stream.wait_readable(o_.idle_timeout) || svr_sock_ == INVALID_SOCKET) break;
      stream.start_request(SocketStream::Clock::now() + o_.request_timeout);
      bool closed = false;
      ok = process_request(stream, left == 1 || svr_sock_ == INVALID_SOCKET, closed, nullptr);
      if (!ok || closed) break;
    }
    SocketStream::set_current(nullptr);
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
    return ok;
  }
  const ServerOptions& o_;
};

Server::Server(ServerOptions options)
    : options_(std::move(options)), http_(std::make_unique<Http>(options_)) {
  auto& h = *http_;
  const size_t threads = std::max<size_t>(options_.http_threads, 4);
  h.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
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
  listener_ = std::thread([this] { http_->listen_after_bind(); });
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
  model_ = std::move(model);
  model_id_ = std::move(model_id);
  scheduler_ = std::make_unique<Scheduler>(model_, options);
  ready_ = true;
}

void Server::stop(milliseconds grace) {
  std::unique_lock lock(stop_mutex_);
  if (stopped_) return;
  stopping_ = true;
  if (scheduler_) scheduler_->shutdown(grace);  // every job gets its last event
  // httplib stops writing streams once it stops: let them send their last event and [DONE].
  for (int i = 0; i < 200 && open_streams_ > 0; ++i) std::this_thread::sleep_for(milliseconds(10));
  http_->stop();
  if (listener_.joinable()) listener_.join();
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
         "Prompt tokens reused from a slot's KV cache.", s.cached_tokens);
  metric("brise_completion_tokens_total", "counter", "Tokens generated.", s.completion_tokens);
  metric("brise_prefill_tokens_total", "counter", "Prompt tokens fed through the model.",
         s.prefill_tokens);
  metric("brise_prefill_seconds_total", "counter", "Forward-pass time spent on prompt rows.",
         s.prefill_seconds);
  metric("brise_decode_tokens_total", "counter", "Generated tokens fed through the model.",
         s.decode_tokens);
  metric("brise_decode_seconds_total", "counter", "Forward-pass time spent on decode rows.",
         s.decode_seconds);
  metric("brise_forward_passes_total", "counter", "Batched forward passes.", s.passes);
  metric("brise_prefill_tokens_per_second", "gauge", "Prompt tokens per second of pass time.",
         s.prefill_seconds > 0 ? static_cast<double>(s.prefill_tokens) / s.prefill_seconds : 0.0);
  metric("brise_decode_tokens_per_second", "gauge", "Decode tokens per second of pass time.",
         s.decode_seconds > 0 ? static_cast<double>(s.decode_tokens) / s.decode_seconds : 0.0);
  return m.str();
}

void Server::routes() {
  auto& h = *http_;
  // Every response is counted by status, after it was sent.
  h.set_logger(
      [this](const httplib::Request&, const httplib::Response& res) { count_status(res.status); });
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
  // API key and readiness, before the handlers of /v1/*.
  h.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (req.path.rfind("/v1/", 0) != 0 || req.method == "OPTIONS")  // preflights carry no key
      return httplib::Server::HandlerResponse::Unhandled;
    if (!options_.api_key.empty()) {
      const std::string auth = req.get_header_value("Authorization");
      const std::string prefix = "Bearer ";
      if (auth.rfind(prefix, 0) != 0 || !same_key(auth.substr(prefix.size()), options_.api_key)) {
        send_error(res, ApiError(401,
                                 auth.empty() ? "missing API key (Authorization: Bearer ...)"
                                              : "incorrect API key",
                                 {}, "invalid_api_key"));
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    if (!ready_ || stopping_) {
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
    json list = {
        {"object", "list"},
        {"data",
         json::array(
             {{{"id", model_id_}, {"object", "model"}, {"created", 0}, {"owned_by", "brise"}}})}};
    res.set_content(list.dump(), kJson);
  });
  h.Get(R"(/v1/models/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
    if (req.matches[1] != model_id_) {
      send_error(res,
                 ApiError(404, "the model '" + std::string(req.matches[1]) + "' does not exist",
                          "model", "model_not_found"));
      return;
    }
    res.set_content(
        json({{"id", model_id_}, {"object", "model"}, {"created", 0}, {"owned_by", "brise"}})
            .dump(),
        kJson);
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

void Server::serve_completion(int endpoint_id, const httplib::Request& req,
                              httplib::Response& res) {
  const auto endpoint = static_cast<Endpoint>(endpoint_id);
  ApiRequest r = parse_request(endpoint, req.body);
  if (!r.model.empty() && r.model != model_id_)
    throw ApiError(
        400,
        "the model '" + r.model + "' is not served here (this server serves '" + model_id_ + "')",
        "model", "model_not_found");
  const Tokenizer& tokenizer = model_->tokenizer();
  std::vector<int32_t> prompt;
  try {
    prompt = endpoint == Endpoint::ChatCompletions
                 ? format_chat(tokenizer, detect_chat_template(tokenizer), r.messages)
                 : tokenizer.encode(r.prompt, /*add_bos=*/true);
  } catch (const Error& e) {
    throw ApiError(400, e.what(), endpoint == Endpoint::ChatCompletions ? "messages" : "prompt");
  }
  const uint32_t context = scheduler_->context_length();
  if (!scheduler_->unbounded() && prompt.size() > context)
    throw ApiError(400,
                   "the prompt is " + std::to_string(prompt.size()) +
                       " tokens, more than the context of " + std::to_string(context) + " tokens",
                   endpoint == Endpoint::ChatCompletions ? "messages" : "prompt",
                   "context_length_exceeded");

  GenerateOptions g;
  g.sampling = r.sampling;
  if (!r.seeded)
    g.sampling.seed =
        std::random_device{}() * uint64_t{0x9E3779B97F4A7C15} ^ std::random_device{}();
  // OpenAI's defaults: completions stop after 16 tokens, chat when the model ends its answer.
  g.max_tokens = r.max_tokens.value_or(endpoint == Endpoint::Completions ? 16u : context);
  g.stop_strings = r.stop;
  try {
    Sampler check(g.sampling);
  } catch (const Error& e) {
    throw ApiError(400, e.what());
  }

  auto job = std::make_shared<Job>(std::move(prompt), std::move(g));
  if (!scheduler_->submit(job)) {
    if (!scheduler_->accepting()) throw ApiError(503, "the server is shutting down");
    throw ApiError(429, "too many requests are waiting: try again shortly", {}, "queue_full");
  }
  Shapes shapes{endpoint == Endpoint::ChatCompletions,
                random_id(endpoint == Endpoint::ChatCompletions ? "chatcmpl-" : "cmpl-"),
                model_id_};

  if (!r.stream) {
    std::string text;
    Event e;
    auto next_check = Clock::now();
    for (;;) {
      // Every 100 ms, a client that has gone frees its slot (the answer would wait for nobody).
      const auto now = Clock::now();
      if (now >= next_check) {
        next_check = now + milliseconds(100);
        const SocketStream* connection = SocketStream::current();
        if (connection && connection->peer_closed()) {
          job->cancel();
          throw ApiError(499, "the client closed the connection");
        }
      }
      if (!job->next(e, milliseconds(100))) continue;
      if (e.kind == Event::Kind::Text) {
        text += e.text;
      } else if (e.kind == Event::Kind::Error) {
        throw ApiError(e.status, e.text);
      } else {
        res.set_content(shapes.whole(text, e.length, e.usage)
                            .dump(-1, ' ', false, json::error_handler_t::replace),
                        kJson);
        return;
      }
    }
  }

  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  struct StreamState {
    bool started = false;
    Clock::time_point next_check = Clock::now();
  };
  auto state = std::make_shared<StreamState>();
  ++open_streams_;
  const bool include_usage = r.include_usage;
  res.set_chunked_content_provider(
      "text/event-stream",
      [job, shapes, state, include_usage](size_t, httplib::DataSink& sink) {
        const auto write = [&](const std::string& s) { return sink.write(s.data(), s.size()); };
        if (!state->started) {
          state->started = true;
          if (shapes.chat && !write(sse(shapes.chunk(nullptr, true, nullptr, include_usage))))
            return job->cancel(), false;
        }
        Event e;
        if (!job->next(e, milliseconds(100))) {
          // Nothing new: check that the client is still there.
          if (!sink.is_writable()) return job->cancel(), false;
          return true;
        }
        if (e.kind == Event::Kind::Text) {
          if (!write(sse(shapes.chunk(&e.text, false, nullptr, include_usage))))
            return job->cancel(), false;
          // A write into a closed connection may still succeed (the kernel buffers it): look
          // for the peer's close every 100 ms as well.
          if (const auto now = Clock::now(); now >= state->next_check) {
            state->next_check = now + milliseconds(100);
            if (!sink.is_writable()) return job->cancel(), false;
          }
          return true;
        }
        bool ok = true;
        if (e.kind == Event::Kind::Error) {
          ok = write(sse(error_body(ApiError(e.status, e.text))));
        } else {
          const std::string reason(finish_reason_name(e.length));
          ok = write(sse(shapes.chunk(nullptr, false, reason.c_str(), include_usage)));
          if (ok && include_usage) ok = write(sse(shapes.usage_chunk(e.usage)));
        }
        if (ok) ok = write("data: [DONE]\n\n");
        sink.done();
        return ok;
      },
      [this, job](bool success) {
        if (!success) job->cancel();  // the client went away: free the slot
        --open_streams_;
      });
}

}  // namespace brise::serve
