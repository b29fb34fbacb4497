// brise serve in process, for its tests: an HTTP client, streamed answers taken apart, raw
// sockets, /metrics values, and a fixture that starts a server over stories260k.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "brise/generate.hpp"
#include "brise/model.hpp"
#include "brise/session.hpp"
#include "serve/server.hpp"
#include "support/stories.hpp"
#include "support/testdata.hpp"

namespace brise::test {

using nlohmann::json;
using namespace std::chrono_literals;

struct Reply {
  int status = -1;
  std::string body;
  httplib::Headers headers;
  json j() const { return json::parse(body); }
};

class Client {
 public:
  explicit Client(int port, std::string key = {}) : cli_("127.0.0.1", port) {
    cli_.set_read_timeout(60, 0);
    if (!key.empty()) cli_.set_bearer_token_auth(key);
  }
  Reply post(const std::string& path, const std::string& body) {
    return to_reply(cli_.Post(path.c_str(), body, "application/json"));
  }
  Reply get(const std::string& path) { return to_reply(cli_.Get(path.c_str())); }

 private:
  static Reply to_reply(const httplib::Result& r) {
    Reply out;
    if (!r) return out;
    out.status = r->status;
    out.body = r->body;
    out.headers = r->headers;
    return out;
  }
  httplib::Client cli_;
};

// The text of a completion or chat completion object.
inline std::string text_of(const json& j) {
  const json& c = j.at("choices").at(0);
  return c.contains("message") ? c["message"]["content"].get<std::string>()
                               : c["text"].get<std::string>();
}

// Streams a request; returns the concatenated deltas, every data line's JSON, and whether [DONE]
// ended it.
struct Streamed {
  std::string text;
  std::vector<json> chunks;
  bool done = false;
  int status = -1;
};
inline Streamed stream(int port, const std::string& path, json body) {
  body["stream"] = true;
  httplib::Client cli("127.0.0.1", port);
  cli.set_read_timeout(60, 0);
  Streamed s;
  std::string buffer;
  httplib::Request req;
  auto res = cli.Post(path.c_str(), httplib::Headers{}, body.dump(), "application/json");
  if (!res) return s;
  s.status = res->status;
  size_t pos = 0;
  const std::string& all = res->body;
  while ((pos = all.find("data: ", pos)) != std::string::npos) {
    const size_t end = all.find("\n\n", pos);
    const std::string data = all.substr(pos + 6, end - pos - 6);
    pos = end;
    if (data == "[DONE]") {
      s.done = true;
      continue;
    }
    const json j = json::parse(data);
    s.chunks.push_back(j);
    if (j.contains("choices") && !j["choices"].empty()) {
      const json& c = j["choices"][0];
      if (c.contains("delta") && c["delta"].contains("content"))
        s.text += c["delta"]["content"].get<std::string>();
      if (c.contains("text")) s.text += c["text"].get<std::string>();
    }
  }
  return s;
}

// Raw TCP for requests no well-behaved client sends.
inline int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}
inline std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;)
    out.append(buf, static_cast<size_t>(n));
  return out;
}

inline double metric(int port, const std::string& name) {
  const Reply r = Client(port).get("/metrics");
  const size_t at = r.body.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::stod(r.body.substr(at + name.size() + 2));
}

class Serve : public ::testing::Test {
 protected:
  void SetUp() override {
    BRISE_REQUIRE_TESTDATA(dir);
    data_ = dir;
    model_ = Model::load(test::converted_model(data_, "models/stories260k/hf"));
  }
  std::unique_ptr<serve::Server> start(int parallel = 4, serve::ServerOptions o = {},
                                       SchedulerOptions s = {},
                                       std::shared_ptr<const Model> model = nullptr,
                                       const std::string& id = "stories260k") {
    o.port = 0;
    // Short deadlines, so that tests of slow clients are quick (unless the test sets its own).
    if (o.request_timeout == serve::ServerOptions{}.request_timeout) o.request_timeout = 2s;
    if (o.idle_timeout == serve::ServerOptions{}.idle_timeout) o.idle_timeout = 2s;
    auto server = std::make_unique<serve::Server>(o);
    s.parallel = parallel;
    s.threads = 2;
    server->set_model(model ? model : model_, id, s);
    return server;
  }
  // brise::generate on a Session of its own: what the server must reproduce.
  std::string reference(const std::vector<int32_t>& prompt, uint32_t max_tokens,
                        SamplingParams p = {}, std::shared_ptr<const Model> model = nullptr) {
    Session session(model ? model : model_);
    GenerateOptions g;
    g.sampling = p;
    g.max_tokens = max_tokens;
    return generate(session, prompt, g).text;
  }
  std::filesystem::path data_;
  std::shared_ptr<const Model> model_;
};

}  // namespace brise::test
