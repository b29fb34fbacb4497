// brise serve in process, for its tests: an HTTP client, streamed answers taken apart, raw
// sockets, /metrics values, and a fixture that starts a server over stories260k. The bodies are
// in serve_client.cpp, compiled once: cpp-httplib's header costs each file that includes it
// several seconds of compile time.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "brise/generate.hpp"
#include "brise/model.hpp"
#include "brise/session.hpp"
#include "serve/server.hpp"
#include "support/json_text.hpp"

namespace brise::test {

using nlohmann::json;
using namespace std::chrono_literals;

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Reply {
  int status = -1;  // -1: no answer (connection failed or timed out)
  std::string body;
  Headers headers;
  json j() const { return parse_json(body); }
  // The first header of that name (compared without case, as HTTP does); "" when absent.
  std::string header(const std::string& name) const;
};

// An HTTP/1.1 client of 127.0.0.1:port (keeps its connection between requests).
class Client {
 public:
  explicit Client(int port, std::string key = {});
  ~Client();
  Reply post(const std::string& path, const std::string& body, const Headers& headers = {});
  Reply get(const std::string& path, const Headers& headers = {});
  Reply options(const std::string& path);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The text of a completion or chat completion object.
std::string text_of(const json& j);

// Streams a request; returns the concatenated deltas, every data line's JSON, and whether [DONE]
// ended it.
struct Streamed {
  std::string text;
  std::vector<json> chunks;
  bool done = false;
  int status = -1;
};
Streamed stream(int port, const std::string& path, json body);

// Raw TCP for requests no well-behaved client sends: a connected socket (10 s receive timeout)
// or -1, and everything it receives until the peer closes.
int connect_to(int port);
std::string read_all(int fd);

// The value of one line of /metrics, -1 when absent.
double metric(int port, const std::string& name);

class Serve : public ::testing::Test {
 protected:
  void SetUp() override;
  std::unique_ptr<serve::Server> start(int parallel = 4, serve::ServerOptions o = {},
                                       SchedulerOptions s = {},
                                       std::shared_ptr<const Model> model = nullptr,
                                       const std::string& id = "stories260k");
  // brise::generate on a Session of its own: what the server must reproduce.
  std::string reference(const std::vector<int32_t>& prompt, uint32_t max_tokens,
                        SamplingParams p = {}, std::shared_ptr<const Model> model = nullptr);
  std::filesystem::path data_;
  std::shared_ptr<const Model> model_;
};

}  // namespace brise::test
