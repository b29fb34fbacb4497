#include "support/serve_client.hpp"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "support/stories.hpp"
#include "support/testdata.hpp"

namespace brise::test {

namespace {

Reply to_reply(const httplib::Result& r) {
  Reply out;
  if (!r) return out;
  out.status = r->status;
  out.body = r->body;
  for (const auto& [name, value] : r->headers) out.headers.emplace_back(name, value);
  return out;
}

httplib::Headers to_httplib(const Headers& headers) {
  return httplib::Headers(headers.begin(), headers.end());
}

}  // namespace

std::string Reply::header(const std::string& name) const {
  for (const auto& [n, value] : headers)
    if (strcasecmp(n.c_str(), name.c_str()) == 0) return value;
  return "";
}

struct Client::Impl {
  explicit Impl(int port) : cli("127.0.0.1", port) {}
  httplib::Client cli;
};

Client::Client(int port, std::string key) : impl_(std::make_unique<Impl>(port)) {
  impl_->cli.set_read_timeout(60, 0);
  if (!key.empty()) impl_->cli.set_bearer_token_auth(key);
}
Client::~Client() = default;

Reply Client::post(const std::string& path, const std::string& body, const Headers& headers) {
  return to_reply(impl_->cli.Post(path.c_str(), to_httplib(headers), body, "application/json"));
}
Reply Client::get(const std::string& path, const Headers& headers) {
  return to_reply(impl_->cli.Get(path.c_str(), to_httplib(headers)));
}
Reply Client::options(const std::string& path) {
  return to_reply(impl_->cli.Options(path));
}

std::string text_of(const json& j) {
  const json& c = j.at("choices").at(0);
  return c.contains("message") ? c["message"]["content"].get<std::string>()
                               : c["text"].get<std::string>();
}

Streamed stream(int port, const std::string& path, json body) {
  body["stream"] = true;
  httplib::Client cli("127.0.0.1", port);
  cli.set_read_timeout(60, 0);
  Streamed s;
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
    const json j = parse_json(data);
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

int connect_to(int port) {
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

std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;)
    out.append(buf, static_cast<size_t>(n));
  return out;
}

double metric(int port, const std::string& name) {
  const Reply r = Client(port).get("/metrics");
  const size_t at = r.body.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::stod(r.body.substr(at + name.size() + 2));
}

void Serve::SetUp() {
  BRISE_REQUIRE_TESTDATA(dir);
  data_ = dir;
  model_ = Model::load(test::converted_model(data_, "models/stories260k/hf"));
}

std::unique_ptr<serve::Server> Serve::start(int parallel, serve::ServerOptions o,
                                            SchedulerOptions s, std::shared_ptr<const Model> model,
                                            const std::string& id) {
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

std::string Serve::reference(const std::vector<int32_t>& prompt, uint32_t max_tokens,
                             SamplingParams p, std::shared_ptr<const Model> model) {
  Session session(model ? model : model_);
  GenerateOptions g;
  g.sampling = p;
  g.max_tokens = max_tokens;
  return generate(session, prompt, g).text;
}

}  // namespace brise::test
