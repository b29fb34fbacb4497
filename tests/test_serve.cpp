// brise serve, in process on a free loopback port (and once as the CLI, for the signals): OpenAI's
// endpoints and shapes, streaming, batch invariance (the same requests alone and among
// neighbours give byte-identical output), prefix reuse, errors, hostile clients, shutdown.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "brise/chat.hpp"
#include "brise/error.hpp"
#include "brise/generate.hpp"
#include "brise/model.hpp"
#include "brise/session.hpp"
#include "serve/server.hpp"
#include "support/json_text.hpp"
#include "support/serve_client.hpp"
#include "support/stories.hpp"
#include "support/testdata.hpp"

namespace brise::serve {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using test::Client;
using test::connect_to;
using test::metric;
using test::read_all;
using test::Reply;
using test::Serve;
using test::stream;
using test::Streamed;
using test::text_of;

TEST_F(Serve, CompletionsMatchGenerateAndHaveOpenAIsShape) {
  auto server = start();
  Client c(server->port());
  EXPECT_EQ(c.get("/health").status, 200);
  const Reply models = c.get("/v1/models");
  ASSERT_EQ(models.status, 200);
  EXPECT_EQ(models.j()["data"][0]["id"], "stories260k");
  EXPECT_EQ(models.j()["object"], "list");

  const Reply r = c.post(
      "/v1/completions",
      R"({"model":"stories260k","prompt":"Once upon a time","max_tokens":40,"temperature":0})");
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = r.j();
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["model"], "stories260k");
  EXPECT_TRUE(j["id"].get<std::string>().rfind("cmpl-", 0) == 0);
  EXPECT_TRUE(j["created"].is_number_integer());
  const auto prompt = model_->tokenizer().encode("Once upon a time", true);
  EXPECT_EQ(text_of(j), reference(prompt, 40));
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["usage"]["prompt_tokens"], prompt.size());
  EXPECT_EQ(j["usage"]["completion_tokens"], 40);
  EXPECT_EQ(j["usage"]["total_tokens"], prompt.size() + 40);

  const Reply chat = c.post(
      "/v1/chat/completions",
      R"({"messages":[{"role":"system","content":"Be nice."},{"role":"user","content":"Tell me a story."}],"max_tokens":12,"temperature":0})");
  ASSERT_EQ(chat.status, 200) << chat.body;
  const json cj = chat.j();
  EXPECT_EQ(cj["object"], "chat.completion");
  EXPECT_EQ(cj["choices"][0]["message"]["role"], "assistant");
  const auto chat_prompt = format_chat(
      model_->tokenizer(), detect_chat_template(model_->tokenizer()),
      {{ChatMessage::Role::System, "Be nice."}, {ChatMessage::Role::User, "Tell me a story."}});
  EXPECT_EQ(text_of(cj), reference(chat_prompt, 12));
  EXPECT_EQ(cj["usage"]["prompt_tokens"], chat_prompt.size());

  // A stop string ends it early, with finish_reason "stop" and the string cut.
  const std::string full = text_of(j);
  const std::string stop = full.substr(10, 5);
  const Reply stopped = c.post(
      "/v1/completions",
      json{{"prompt", "Once upon a time"}, {"max_tokens", 40}, {"temperature", 0}, {"stop", {stop}}}
          .dump());
  ASSERT_EQ(stopped.status, 200);
  EXPECT_EQ(text_of(stopped.j()), full.substr(0, full.find(stop)));
  EXPECT_EQ(stopped.j()["choices"][0]["finish_reason"], "stop");
}

TEST_F(Serve, StreamingSendsChunksThenDoneAndEqualsTheWholeAnswer) {
  auto server = start();
  const json body = {{"messages", {{{"role", "user"}, {"content", "Tell me about a cat."}}}},
                     {"max_tokens", 30},
                     {"temperature", 0}};
  const Reply whole = Client(server->port()).post("/v1/chat/completions", body.dump());
  ASSERT_EQ(whole.status, 200);
  json with_usage = body;
  with_usage["stream_options"] = {{"include_usage", true}};
  const Streamed s = stream(server->port(), "/v1/chat/completions", with_usage);
  ASSERT_EQ(s.status, 200);
  EXPECT_TRUE(s.done);
  EXPECT_EQ(s.text, text_of(whole.j()));
  ASSERT_GE(s.chunks.size(), 4u);
  EXPECT_EQ(s.chunks.front()["object"], "chat.completion.chunk");
  EXPECT_EQ(s.chunks.front()["choices"][0]["delta"]["role"], "assistant");
  const json& last = s.chunks.back();  // the usage chunk
  EXPECT_TRUE(last["choices"].empty());
  EXPECT_EQ(last["usage"]["completion_tokens"], whole.j()["usage"]["completion_tokens"]);
  EXPECT_EQ(s.chunks[s.chunks.size() - 2]["choices"][0]["finish_reason"], "length");
  for (const json& c : s.chunks) EXPECT_EQ(c["id"], s.chunks.front()["id"]);
  // The same prompt again: a slot holds it, so all of it but its last token (fed again for fresh
  // logits) is kept, as the stream's usage and /metrics say.
  const int prompt_tokens = whole.j()["usage"]["prompt_tokens"];
  EXPECT_EQ(whole.j()["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
  EXPECT_EQ(last["usage"]["prompt_tokens"], prompt_tokens);
  EXPECT_EQ(last["usage"]["prompt_tokens_details"]["cached_tokens"], prompt_tokens - 1);
  EXPECT_EQ(metric(server->port(), "brise_prompt_cached_tokens_total"), prompt_tokens - 1);

  const Streamed plain = stream(server->port(), "/v1/completions",
                                {{"prompt", "The dog"}, {"max_tokens", 20}, {"temperature", 0}});
  EXPECT_TRUE(plain.done);
  EXPECT_EQ(plain.text, reference(model_->tokenizer().encode("The dog", true), 20));
  EXPECT_FALSE(plain.chunks.back().contains("usage") && !plain.chunks.back()["usage"].is_null());
}

// The same requests give byte-identical output alone and among other requests at other positions.
TEST_F(Serve, OutputDoesNotDependOnTheOtherRequests) {
  auto server = start(4);
  const int port = server->port();
  std::vector<json> requests;
  const char* prompts[] = {"Once upon a time", "The dog",
                           "Lily and Tom went to the park. They saw a big",
                           "One day, a little bird", "The sun was"};
  for (int i = 0; i < 5; ++i) {
    json r = {{"prompt", prompts[i]}, {"max_tokens", 24 + 7 * i}};
    if (i % 2)
      r["temperature"] = 0.9, r["seed"] = 100 + i, r["top_p"] = 0.9;
    else
      r["temperature"] = 0;
    requests.push_back(r);
  }
  std::vector<std::string> alone;
  for (const json& r : requests) {
    const Reply rep = Client(port).post("/v1/completions", r.dump());
    ASSERT_EQ(rep.status, 200) << rep.body;
    alone.push_back(text_of(rep.j()));
  }
  // Together, twice, in different orders and with different extra neighbours (some streaming).
  for (int round = 0; round < 2; ++round) {
    std::vector<std::future<std::string>> futures;
    for (int k = 0; k < 5; ++k) {
      const int i = round == 0 ? k : 4 - k;
      futures.push_back(std::async(std::launch::async, [&, i] {
        if (i == 2) return stream(port, "/v1/completions", requests[i]).text;
        const Reply rep = Client(port).post("/v1/completions", requests[i].dump());
        return rep.status == 200 ? text_of(rep.j()) : "HTTP " + std::to_string(rep.status);
      }));
      if (round == 1)
        futures.push_back(std::async(std::launch::async, [&, k] {
          Client(port).post(
              "/v1/chat/completions",
              json{{"messages", {{{"role", "user"}, {"content", std::string(k * 20, 'a')}}}},
                   {"max_tokens", 5 + k}}
                  .dump());
          return std::string();
        }));
    }
    std::vector<std::string> together;
    for (auto& f : futures) together.push_back(f.get());
    for (int k = 0; k < 5; ++k) {
      const int i = round == 0 ? k : 4 - k;
      EXPECT_EQ(together[round == 0 ? k : 2 * k], alone[i])
          << "request " << i << ", round " << round;
    }
  }
  EXPECT_GT(metric(port, "brise_forward_passes_total"), 0);
}

TEST_F(Serve, APromptStartingWithAnIdleSlotsTokensSkipsThem) {
  for (const char* dir : {"models/stories260k/hf", "models/stories260k/hf-sw8"}) {
    const auto model = Model::load(test::converted_model(data_, dir));
    auto server = start(1, {}, {}, model);
    Client c(server->port());
    const std::string system =
        "You are a storyteller who tells short and happy stories about animals.";
    const auto ask = [&](const std::string& question) {
      return c.post("/v1/chat/completions", json{{"messages",
                                                  {{{"role", "system"}, {"content", system}},
                                                   {{"role", "user"}, {"content", question}}}},
                                                 {"max_tokens", 10},
                                                 {"temperature", 0}}
                                                .dump());
    };
    ASSERT_EQ(ask("A cat?").status, 200);
    const Reply second = ask("A dog?");
    ASSERT_EQ(second.status, 200);
    const auto prompt =
        format_chat(model->tokenizer(), detect_chat_template(model->tokenizer()),
                    {{ChatMessage::Role::System, system}, {ChatMessage::Role::User, "A dog?"}});
    EXPECT_EQ(text_of(second.j()), reference(prompt, 10, {}, model)) << dir;
    const int cached = second.j()["usage"]["prompt_tokens_details"]["cached_tokens"];
    if (std::string(dir).find("sw8") == std::string::npos) {
      EXPECT_GT(cached, 10) << "the system prompt's tokens were not reused";
    }
    EXPECT_LT(cached, static_cast<int>(prompt.size()));
  }
}

TEST_F(Serve, BadRequestsGetOpenAIErrorObjects) {
  ServerOptions o;
  o.max_body_bytes = 64 << 10;
  SchedulerOptions s;
  s.session.context_length = 64;
  auto server = start(2, o, s);
  Client c(server->port());
  const auto expect_error = [&](const std::string& path, const std::string& body, int status,
                                const std::string& param = {}) {
    const Reply r = c.post(path, body);
    EXPECT_EQ(r.status, status) << body.substr(0, 80) << " -> " << r.body.substr(0, 200);
    if (r.status != status) return;
    const json j = test::parse_json_or_discarded(r.body);
    ASSERT_TRUE(j.is_object() && j.contains("error")) << r.body;
    EXPECT_TRUE(j["error"]["message"].is_string());
    EXPECT_TRUE(j["error"]["type"].is_string());
    if (!param.empty()) {
      EXPECT_EQ(j["error"]["param"], param);
    }
  };
  const std::string chat = "/v1/chat/completions", comp = "/v1/completions";
  expect_error(chat, "{\"messages\": [", 400);
  expect_error(chat, "not json", 400);
  expect_error(chat, "", 400);
  expect_error(chat, "[1,2]", 400);
  expect_error(chat, R"({"messages": "hi"})", 400, "messages");
  expect_error(chat, R"({"messages": []})", 400, "messages");
  expect_error(chat, R"({"messages": [{"role": "wizard", "content": "x"}]})", 400,
               "messages[0].role");
  expect_error(chat, R"({"messages": [{"role": "user", "content": 5}]})", 400,
               "messages[0].content");
  expect_error(comp, R"({"prompt": "a", "max_tokens": "ten"})", 400, "max_tokens");
  expect_error(comp, R"({"prompt": "a", "max_tokens": 0})", 400, "max_tokens");
  expect_error(comp, R"({"prompt": "a", "max_tokens": 1e30})", 400, "max_tokens");
  expect_error(comp, R"({"prompt": "a", "max_tokens": 99999999999999999999999})", 400,
               "max_tokens");
  expect_error(comp, R"({"prompt": "a", "temperature": 1e999})", 400);
  expect_error(comp, R"({"prompt": "a", "temperature": -1})", 400, "temperature");
  expect_error(comp, R"({"prompt": "a", "top_p": 0})", 400, "top_p");
  expect_error(comp, R"({"prompt": "a", "n": 0})", 400, "n");
  expect_error(comp, R"({"prompt": "a", "stream": "yes"})", 400, "stream");
  expect_error(comp, R"({"prompt": "a", "stop": [1]})", 400, "stop[0]");
  expect_error(comp, R"({"prompt": "a", "model": "gpt-4"})", 404, "model");
  expect_error(comp, R"({"prompt": 7})", 400, "prompt");
  expect_error(comp, R"({})", 400, "prompt");
  expect_error(comp, std::string(100, '[') + std::string(100, ']'), 400);
  expect_error(comp, "{\"prompt\": \"bad \xff\xfe utf-8\"}", 400);
  expect_error(comp, json{{"prompt", std::string(2000, 'x') + " long"}}.dump(), 400,
               "prompt");  // > 64 tokens
  expect_error(comp, "{\"prompt\": \"" + std::string(100 << 10, 'a') + "\"}", 413);
  // 404 and 405.
  EXPECT_EQ(c.get("/v1/nothing").status, 404);
  EXPECT_EQ(c.get("/v1/chat/completions").status, 405);
  EXPECT_EQ(c.post("/health", "{}").status, 405);
  EXPECT_TRUE(test::parse_json(c.get("/v1/nothing").body).contains("error"));
  // The server still works.
  EXPECT_EQ(c.post(comp, R"({"prompt":"a","max_tokens":3})").status, 200);
  EXPECT_GT(metric(server->port(), "brise_requests_total{status=\"400\"}"), 10);
}

TEST_F(Serve, WhileTheModelLoadsHealthAndTheApiAnswer503) {
  ServerOptions o;
  o.port = 0;
  Server server(o);  // listening, no model yet
  const Reply health = Client(server.port()).get("/health");
  EXPECT_EQ(health.status, 503);
  EXPECT_EQ(health.header("Retry-After"), std::string("1"));
  const Reply api = Client(server.port()).post("/v1/completions", R"({"prompt":"a"})");
  EXPECT_EQ(api.status, 503);
  EXPECT_TRUE(api.j().contains("error"));
  EXPECT_EQ(Client(server.port()).get("/").status, 200);  // the page loads and waits
  SchedulerOptions s;
  s.threads = 1;
  server.set_model(model_, "stories260k", s);
  EXPECT_EQ(Client(server.port()).get("/health").status, 200);
  // A 10 MB body is refused with 413 and the server goes on.
  const Reply huge =
      Client(server.port())
          .post("/v1/completions", "{\"prompt\": \"" + std::string(10 << 20, 'a') + "\"}");
  EXPECT_EQ(huge.status, 413);
  EXPECT_EQ(
      Client(server.port()).post("/v1/completions", R"({"prompt":"a","max_tokens":2})").status,
      200);
}

TEST_F(Serve, ApiKeyIsRequiredWhenSet) {
  ServerOptions o;
  o.api_key = "s3cret-key";
  auto server = start(1, o);
  const std::string body = R"({"prompt":"a","max_tokens":2})";
  EXPECT_EQ(Client(server->port()).post("/v1/completions", body).status, 401);
  EXPECT_EQ(Client(server->port(), "wrong-key!").post("/v1/completions", body).status, 401);
  EXPECT_EQ(Client(server->port(), "s3cret-key").post("/v1/completions", body).status, 200);
  EXPECT_EQ(Client(server->port()).get("/health").status, 200);  // open: load balancers probe it
  // Every other endpoint needs the key too: /metrics tells the load and /v1/models the model.
  for (const char* path : {"/metrics", "/v1/models", "/v1/models/stories260k"}) {
    EXPECT_EQ(Client(server->port()).get(path).status, 401) << path;
    EXPECT_EQ(Client(server->port(), "s3cret-key").get(path).status, 200) << path;
  }
  // The chat page is served without it (the page asks for the key).
  EXPECT_EQ(Client(server->port()).get("/").status, 200);
  // RFC 9110: the scheme is case-insensitive.
  for (const char* auth : {"bearer s3cret-key", "BEARER s3cret-key"}) {
    EXPECT_EQ(
        Client(server->port()).post("/v1/completions", body, {{"Authorization", auth}}).status, 200)
        << auth;
  }
  for (const char* auth : {"Basic s3cret-key", "Bearers3cret-key", "Bearer s3cret-ke"}) {
    EXPECT_EQ(Client(server->port()).get("/metrics", {{"Authorization", auth}}).status, 401)
        << auth;
  }
  // A browser's CORS preflight carries no key; the answers allow other origins.
  const Reply preflight = Client(server->port()).options("/v1/chat/completions");
  EXPECT_EQ(preflight.status, 204);
  EXPECT_EQ(preflight.header("Access-Control-Allow-Origin"), "*");
  EXPECT_NE(preflight.header("Access-Control-Allow-Headers").find("Authorization"),
            std::string::npos);
}

TEST_F(Serve, AFullQueueAnswers429WithRetryAfter) {
  SchedulerOptions s;
  s.queue_limit = 0;
  const auto endless = Model::load(test::converted_model(data_, "models/stories260k/hf-sw8"));
  auto server = start(1, {}, s, endless);
  const int port = server->port();
  // A long streaming request holds the only slot; the next one finds no room.
  const int fd = connect_to(port);
  const std::string body = R"({"prompt":"Once","max_tokens":1000000,"stream":true})";
  const std::string req =
      "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
      "application/json\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  ASSERT_EQ(::send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
  char buf[512];
  ASSERT_GT(::recv(fd, buf, sizeof buf, 0), 0);                       // the response has started
  const auto admitted_until = std::chrono::steady_clock::now() + 5s;  // and the job has its slot
  while (metric(port, "brise_slots_busy") != 1 && std::chrono::steady_clock::now() < admitted_until)
    std::this_thread::sleep_for(10ms);
  ASSERT_EQ(metric(port, "brise_slots_busy"), 1);
  const Reply busy = Client(port).post("/v1/completions", R"({"prompt":"a","max_tokens":2})");
  EXPECT_EQ(busy.status, 429) << busy.body;
  EXPECT_EQ(busy.header("Retry-After"), std::string("1"));
  // The client leaves mid-stream: its slot is freed within a step, and the next request runs.
  ::close(fd);
  const auto until = std::chrono::steady_clock::now() + 5s;
  while ((metric(port, "brise_slots_busy") != 0 || metric(port, "brise_queue_length") != 0) &&
         std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(20ms);
  EXPECT_EQ(metric(port, "brise_slots_busy"), 0);
  EXPECT_EQ(metric(port, "brise_queue_length"), 0);
  // The dropped stream counts as 499 (nginx's "client closed request"), not as a 200.
  const std::string dropped = "brise_requests_total{status=\"499\"}";
  const auto counted_until = std::chrono::steady_clock::now() + 5s;
  while (metric(port, dropped) != 1 && std::chrono::steady_clock::now() < counted_until)
    std::this_thread::sleep_for(20ms);
  EXPECT_EQ(metric(port, dropped), 1);
  EXPECT_EQ(Client(port).post("/v1/completions", R"({"prompt":"a","max_tokens":2})").status, 200);

  // The same for a client waiting for a whole (non-streaming) answer.
  const int waiting = connect_to(port);
  const std::string long_body = R"({"prompt":"Once","max_tokens":1000000})";
  const std::string long_req =
      "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
      "application/json\r\nContent-Length: " +
      std::to_string(long_body.size()) + "\r\n\r\n" + long_body;
  ASSERT_EQ(::send(waiting, long_req.data(), long_req.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(long_req.size()));
  const auto busy_until = std::chrono::steady_clock::now() + 5s;
  while (metric(port, "brise_slots_busy") != 1 && std::chrono::steady_clock::now() < busy_until)
    std::this_thread::sleep_for(10ms);
  ASSERT_EQ(metric(port, "brise_slots_busy"), 1);
  ::close(waiting);
  const auto free_until = std::chrono::steady_clock::now() + 5s;
  while (metric(port, "brise_slots_busy") != 0 && std::chrono::steady_clock::now() < free_until)
    std::this_thread::sleep_for(20ms);
  EXPECT_EQ(metric(port, "brise_slots_busy"), 0)
      << "a non-streaming client that left still holds its slot";
  const auto counted_again = std::chrono::steady_clock::now() + 5s;
  while (metric(port, dropped) != 2 && std::chrono::steady_clock::now() < counted_again)
    std::this_thread::sleep_for(20ms);
  EXPECT_EQ(metric(port, dropped), 2);
}

TEST_F(Serve, SlowAndBrokenClientsAreDropped) {
  auto server = start(1);
  const int port = server->port();
  // A byte at a time, slower than the 2 s request deadline allows: the server closes it.
  const int slow = connect_to(port);
  const std::string head = "POST /v1/completions HTTP/1.1\r\nHost: x\r\n";
  const auto t0 = std::chrono::steady_clock::now();
  bool closed = false;
  for (char ch : head) {
    if (::send(slow, &ch, 1, MSG_NOSIGNAL) != 1) {
      closed = true;
      break;
    }
    char b;
    pollfd p{slow, POLLIN, 0};
    if (::poll(&p, 1, 300) > 0 && ::recv(slow, &b, 1, MSG_DONTWAIT) <= 0) {
      closed = true;
      break;
    }
  }
  EXPECT_TRUE(closed) << "a client trickling its request was never dropped";
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 6s);
  ::close(slow);
  // Truncated bodies and garbage: an error or a closed connection, never a hang or a crash.
  for (const std::string& raw :
       {std::string("POST /v1/completions HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"pro"),
        std::string("GARBAGE\r\n\r\n"), std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n")}) {
    const int fd = connect_to(port);
    ::send(fd, raw.data(), raw.size(), MSG_NOSIGNAL);
    ::shutdown(fd, SHUT_WR);
    const std::string answer = read_all(fd);
    ::close(fd);
    if (raw.rfind("GET", 0) == 0) {
      EXPECT_NE(answer.find("200 OK"), std::string::npos);
    }
  }
  EXPECT_EQ(Client(port).post("/v1/completions", R"({"prompt":"a","max_tokens":2})").status, 200);
}

TEST_F(Serve, AMalformedOrOversizedHeadGetsOneErrorAndTheConnectionCloses) {
  auto server = start(1);
  const int port = server->port();
  struct Case {
    std::string raw;
    int status;
    std::string says;  // in the error message
  };
  const std::string json_head = "POST /v1/completions HTTP/1.1\r\nHost: x\r\n";
  const std::string next = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";  // pipelined: not answered
  const std::vector<Case> cases = {
      {json_head + "Content-Length: -1\r\n\r\n{\"prompt\":\"a\"}", 400, "Content-Length"},
      {json_head + "Content-Length: 5x\r\n\r\n{\"prompt\":\"a\"}", 400, "Content-Length"},
      {json_head + "Content-Length: 3\r\nContent-Length: 4\r\n\r\n{}}}", 400, "Content-Length"},
      {"GARBAGE\r\n\r\n" + next, 400, "request line"},
      {"GET /health HTTP/2.0\r\n\r\n" + next, 400, "version"},
      {"GET /health HTTP/1.1\r\n folded\r\n\r\n" + next, 400, "Name: value"},
      {"GET /health HTTP/1.1\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n" + next, 431,
       "16384"},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.raw.substr(0, 60));
    const int fd = connect_to(port);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::send(fd, k.raw.data(), k.raw.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(k.raw.size()));
    const auto t0 = std::chrono::steady_clock::now();
    const std::string answer = read_all(fd);  // until the server closes
    ::close(fd);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s) << "the connection was left open";
    EXPECT_EQ(answer.rfind("HTTP/1.1 " + std::to_string(k.status) + " ", 0), 0u) << answer;
    // One response: nothing after its body.
    const size_t body = answer.find("\r\n\r\n");
    ASSERT_NE(body, std::string::npos);
    const size_t length_at = answer.find("Content-Length: ");
    ASSERT_LT(length_at, body);
    EXPECT_EQ(answer.size(), body + 4 + std::stoul(answer.substr(length_at + 16))) << answer;
    const json error = test::parse_json(answer.substr(body + 4))["error"];
    EXPECT_NE(error["message"].get<std::string>().find(k.says), std::string::npos) << error;
  }
  // Well-formed pipelined requests are still all answered.
  const int fd = connect_to(port);
  const std::string two = next + "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  ::send(fd, two.data(), two.size(), MSG_NOSIGNAL);
  const std::string answer = read_all(fd);
  ::close(fd);
  EXPECT_EQ(answer.find("HTTP/1.1 200 OK"), 0u);
  EXPECT_NE(answer.find("HTTP/1.1 200 OK", 10), std::string::npos) << answer;
  EXPECT_EQ(metric(port, "brise_requests_total{status=\"431\"}"), 1);
}

// Bytes of an f32 KV cache of `positions` (whole blocks of 32) on every layer, restated: a key and
// a value of head_dim floats per KV head and position.
uint64_t kv_bytes_f32(const ModelConfig& c, uint64_t positions) {
  return uint64_t{c.n_layers} * positions * c.n_kv_heads * c.head_dim * 2 * sizeof(float);
}

// The KV cache of every slot is reserved at start, and stated; requests never add to it. A server
// whose KV cache does not fit in its memory limit refuses to start, with the reason.
// httplib stops only a server that is already listening: a Server destroyed right after it was
// made (its listening thread not yet started) once listened for ever and hung its destructor.
TEST(ServeStop, AServerStoppedAsSoonAsItIsMadeStops) {
  for (int i = 0; i < 200; ++i) {
    serve::ServerOptions o;
    o.port = 0;
    serve::Server server(o);
  }
}

TEST_F(Serve, TheKvCacheIsReservedAtStartAndMustFitTheMemoryLimit) {
  SchedulerOptions s;
  s.session.context_length = 200;  // 224 positions stored
  const uint64_t kv = 3 * kv_bytes_f32(model_->config(), 224);
  const uint64_t weights = fs::file_size(test::converted_model(data_, "models/stories260k/hf"));
  {
    auto server = start(3, {}, s);
    EXPECT_EQ(server->memory().kv_cache_bytes, kv);
    EXPECT_EQ(server->memory().weights_bytes, weights);
    const int port = server->port();
    EXPECT_EQ(metric(port, "brise_kv_cache_reserved_bytes"), static_cast<double>(kv));
    EXPECT_EQ(metric(port, "brise_kv_cache_bytes"), static_cast<double>(kv));
    std::vector<std::future<int>> running;
    for (int i = 0; i < 5; ++i)
      running.push_back(std::async(std::launch::async, [port] {
        return Client(port)
            .post("/v1/completions", R"({"prompt":"Once upon a time","max_tokens":150})")
            .status;
      }));
    for (auto& r : running) EXPECT_EQ(r.get(), 200);
    EXPECT_EQ(metric(port, "brise_kv_cache_bytes"), static_cast<double>(kv));
  }
  serve::ServerOptions o;
  o.port = 0;
  o.memory_limit_bytes = weights + kv - 1;
  serve::Server refusing(o);
  s.parallel = 3;
  try {
    refusing.set_model(model_, "stories260k", s);
    ADD_FAILURE() << "a KV cache over the memory limit was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("memory limit"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--ctx-size"), std::string::npos) << e.what();
  }
  o.memory_limit_bytes = weights + kv;
  serve::Server fitting(o);
  fitting.set_model(model_, "stories260k", s);
  EXPECT_EQ(fitting.memory().kv_cache_bytes, kv);
}

// Whether the server has closed `fd` within `within` (a read sees the end, or an error).
bool closed_by_server(int fd, std::chrono::milliseconds within) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(within.count())) <= 0) return false;
  char b;
  return ::recv(fd, &b, 1, MSG_DONTWAIT) <= 0;
}

// A slowloris: connections that send nothing, or part of a request head and then nothing. They
// wait in the connection gate, and hold none of the 4 workers: /health and a completion answer.
TEST_F(Serve, TwoHundredStalledConnectionsLeaveHealthAndRequestsAnswering) {
  serve::ServerOptions o;
  o.http_threads = 4;
  o.request_timeout = 60s;  // longer than the test: the stalled connections stay
  o.idle_timeout = 60s;
  auto server = start(1, o);
  const int port = server->port();
  std::vector<int> stalled;
  const std::string partial = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Le";
  for (int i = 0; i < 200; ++i) {
    const int fd = connect_to(port);
    ASSERT_GE(fd, 0);
    if (i % 2) ::send(fd, partial.data(), partial.size(), MSG_NOSIGNAL);
    stalled.push_back(fd);
  }
  // A functional bound, far above the milliseconds this takes: without the gate the stalled
  // connections hold every worker until their 60 s deadline.
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(Client(port).get("/health").status, 200);
  const Reply r = Client(port).post("/v1/completions", R"({"prompt":"a","max_tokens":2})");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  // None of them was dropped: 200 are within --max-connections.
  int dropped = 0;
  for (int fd : stalled) dropped += closed_by_server(fd, 0ms);
  EXPECT_EQ(dropped, 0);
  for (int fd : stalled) ::close(fd);
}

TEST_F(Serve, StalledConnectionsAreClosedAtTheirDeadlineOrWhenNewOnesNeedRoom) {
  serve::ServerOptions o;
  o.request_timeout = 1s;
  o.idle_timeout = 1s;
  {
    auto server = start(1, o);
    const int port = server->port();
    const int silent = connect_to(port);
    const int partial = connect_to(port);
    const std::string head = "GET /health HTTP/1.1\r\nHost: x\r\n";  // no empty line
    ::send(partial, head.data(), head.size(), MSG_NOSIGNAL);
    EXPECT_TRUE(closed_by_server(silent, 5s)) << "a connection that sent nothing stayed open";
    EXPECT_TRUE(closed_by_server(partial, 5s)) << "a head that never ended kept its connection";
    ::close(silent);
    ::close(partial);
  }
  // At most max_connections: new connections push out those that have waited longest.
  o.max_connections = 16;
  o.request_timeout = 60s;
  o.idle_timeout = 60s;
  auto server = start(1, o);
  const int port = server->port();
  std::vector<int> stalled;
  for (int i = 0; i < 40; ++i) {
    stalled.push_back(connect_to(port));
    ASSERT_GE(stalled.back(), 0);
    std::this_thread::sleep_for(1ms);  // an order of arrival for the gate to see
  }
  EXPECT_EQ(Client(port).get("/health").status, 200);
  EXPECT_TRUE(closed_by_server(stalled.front(), 5s)) << "the oldest stalled connection stayed";
  int open = 0;
  for (int fd : stalled) open += !closed_by_server(fd, 0ms);
  EXPECT_LE(open, 16);
  EXPECT_GE(open, 8) << "more connections were dropped than room was needed for";
  EXPECT_FALSE(closed_by_server(stalled.back(), 0ms)) << "the newest connection was dropped";
  for (int fd : stalled) ::close(fd);
}

TEST_F(Serve, StopEndsRunningRequestsAndRefusesNewOnes) {
  const auto endless = Model::load(test::converted_model(data_, "models/stories260k/hf-sw8"));
  auto server = start(2, {}, {}, endless);
  const int port = server->port();
  auto running = std::async(std::launch::async, [port] {
    return stream(port, "/v1/completions", {{"prompt", "Once"}, {"max_tokens", 1000000}});
  });
  while (metric(port, "brise_slots_busy") < 1) std::this_thread::sleep_for(10ms);
  const auto t0 = std::chrono::steady_clock::now();
  server->stop(200ms);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  const Streamed s = running.get();
  EXPECT_EQ(s.status, 200);
  ASSERT_FALSE(s.chunks.empty());
  EXPECT_TRUE(s.chunks.back().contains("error")) << "the stream ended without saying why";
  EXPECT_EQ(connect_to(port), -1);  // nothing listens any more
}

TEST_F(Serve, CliStopsOnSigtermAndExitsZero) {
  const fs::path gguf = test::converted_model(data_, "models/stories260k/hf");
  int out[2], err[2];
  ASSERT_EQ(pipe(out), 0);
  ASSERT_EQ(pipe(err), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    dup2(err[1], 2);
    ::close(out[0]);
    ::close(err[0]);
    execl(test::cli_path().c_str(), "brise", "serve", "-m", gguf.c_str(), "--port", "0", "-t", "1",
          "--parallel", "2", "--ctx-size", "100", static_cast<char*>(nullptr));
    _exit(127);
  }
  ::close(out[1]);
  ::close(err[1]);
  std::string line;
  char ch;
  while (line.find('\n') == std::string::npos && ::read(out[0], &ch, 1) == 1) line += ch;
  ::close(out[0]);
  const size_t colon = line.rfind(':');
  ASSERT_NE(colon, std::string::npos) << line;
  const int port = std::stoi(line.substr(colon + 1));
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (Client(port).get("/health").status != 200 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(20ms);
  EXPECT_EQ(Client(port).post("/v1/completions", R"({"prompt":"a","max_tokens":4})").status, 200);
  for (int sig : {SIGTERM}) kill(pid, sig);
  int status = 0;
  const auto t0 = std::chrono::steady_clock::now();
  pid_t done = 0;
  while ((done = waitpid(pid, &status, WNOHANG)) == 0 &&
         std::chrono::steady_clock::now() - t0 < 10s)
    std::this_thread::sleep_for(20ms);
  if (done == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    FAIL() << "brise serve did not stop within 10 s of SIGTERM";
  }
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  // The start log states the memory: the file, and the KV cache of 2 slots of 100 positions
  // (stored as 128: whole blocks of 32) reserved whole.
  std::string log;
  char buf[4096];
  for (ssize_t n; (n = ::read(err[0], buf, sizeof buf)) > 0;)
    log.append(buf, static_cast<size_t>(n));
  ::close(err[0]);
  char expected[200];
  std::snprintf(expected, sizeof expected,
                "memory: %.1f MiB of weights (the file, mapped) + %.1f MiB of KV cache (2 "
                "slot(s) x 100 positions, f32, reserved)",
                static_cast<double>(fs::file_size(gguf)) / (1 << 20),
                static_cast<double>(2 * kv_bytes_f32(model_->config(), 128)) / (1 << 20));
  EXPECT_NE(log.find(expected), std::string::npos) << log;
}

}  // namespace
}  // namespace brise::serve
