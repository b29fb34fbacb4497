// bench_serve: a bounded load generator for `brise serve` (OpenAI's API), and its figures.
//
//   build/bench/bench_serve --url http://127.0.0.1:8080 [--clients 4] [--requests 24]
//       [--max-tokens 32 | --max-tokens 8:64] [--prompts mixed|short|medium|long] [--seed 1]
//       [--timeout 120] [--wall-limit 600] [--wait-ready 60] [--no-pairs] [--system-words N]
//       [--json-schema] [--lenient] [--json]
//
// bench/serve_load.sh starts a server, runs this against it and stops it.
//
// Each client is a thread with its own keep-alive connection; the clients take the requests in
// order from one list, drawn from --seed (the same seed, the same requests). The workload mixes
// prompt lengths (short 1-8 words, medium 20-60, long 100-200), /v1/completions and
// /v1/chat/completions, streaming (SSE, with stream_options.include_usage) and not, and greedy
// (temperature 0) and seeded sampling. The requests come in pairs that differ only in `stream`:
// the server must answer both with the same text (its output does not depend on what else is in
// the batch), which is checked; --no-pairs gives every request its own prompt instead (a pair's
// second request may find its prompt in a slot's cache). --system-words N makes every request a
// streamed chat request whose system message is the same N words (one long system prompt that
// all agents share: what the server's prefix cache is for; with pairs, only the first of a pair
// streams); the report adds usage's cached prompt tokens.
//
// Every response is validated: HTTP 200 and a well-formed OpenAI object (choices[0].text or
// .message, finish_reason stop|length, usage totals that add up, completion_tokens <=
// max_tokens), a stream's chunks well-formed and ending in [DONE]. 429 and 503 are retried after
// Retry-After and counted, not errors; anything else is an error and the exit status is 1. Every
// request has a deadline (--timeout), the run a wall limit (--wall-limit; exit 3 past it).
//
// --json-schema makes every request a chat request with a response_format json_schema (a small
// object schema), and checks that each content that finished with "stop" parses as a JSON object.
// --lenient takes two forms of other servers (llama.cpp's llama-server) that OpenAI's API does
// not: the usage on the last choice chunk instead of a chunk of its own, and a stream's first
// chunk without the role.
//
// Figures: requests/s, completion tokens/s (usage.completion_tokens summed over the wall time),
// p50/p99 latency, time to the first content chunk and gap between content chunks (streaming
// requests), and the server's own decode tokens/s from /metrics (the change in
// brise_decode_tokens_total over the change in brise_decode_seconds_total during the run).
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// ---------------------------------------------------------------------------------------------
// Options

struct Options {
  std::string url;
  int clients = 4;
  int requests = 24;
  uint32_t max_tokens_lo = 32, max_tokens_hi = 32;
  std::string prompts = "mixed";
  uint64_t seed = 1;
  double timeout = 120;     // seconds, per request (each try)
  double wall_limit = 600;  // seconds, the whole run
  double wait_ready = 60;   // seconds for GET /health to answer 200 before the run
  std::string model;        // the request's "model" ("" : none sent)
  bool json_out = false;
  bool pairs = true;         // --no-pairs: every request its own prompt
  int system_words = 0;      // > 0: every request a chat with this shared system prompt
  bool json_schema = false;  // every request chat, with a response_format json_schema
  bool lenient = false;      // other servers' stream forms (see the top)
  int show_errors = 10;
};

void usage(FILE* f) {
  std::fprintf(
      f,
      "usage: bench_serve --url URL [options]\n"
      "  --url URL            the server, e.g. http://127.0.0.1:8080\n"
      "  --clients C          concurrent clients, each a thread and a connection (default 4)\n"
      "  --requests R         requests in all (default 24)\n"
      "  --max-tokens N|A:B   max_tokens of each request, or drawn from A..B (default 32)\n"
      "  --prompts KIND       mixed (default), short (1-8 words), medium (20-60), long (100-200)\n"
      "  --seed S             the workload's seed (default 1)\n"
      "  --model NAME         send \"model\": NAME (default: none)\n"
      "  --timeout SECONDS    per request try (default 120)\n"
      "  --wall-limit SECONDS the whole run (default 600; exit 3 past it)\n"
      "  --wait-ready SECONDS for GET /health to answer 200 first (default 60; 0: do not wait)\n"
      "  --show-errors N      errors printed to stderr (default 10)\n"
      "  --no-pairs           every request its own prompt (default: pairs that differ only in\n"
      "                       stream, whose texts must agree)\n"
      "  --system-words N     every request a streamed chat whose system message is the same\n"
      "                       N words\n"
      "  --json-schema        every request chat, with a response_format json_schema\n"
      "  --lenient            take llama-server's stream forms (usage on the last choice chunk)\n"
      "  --json               the report as one JSON object\n"
      "Exit status: 0 every response valid, 1 some were not, 2 usage, 3 wall limit reached.\n");
}

bool parse_number(const std::string& s, double lo, double hi, double& out) {
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || errno != 0 || !(v >= lo && v <= hi)) return false;
  out = v;
  return true;
}

bool parse_integer(const std::string& s, int64_t lo, int64_t hi, int64_t& out) {
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno != 0 || v < lo || v > hi) return false;
  out = v;
  return true;
}

// Returns 0 to run, 1 after --help, 2 on a usage error.
int parse_options(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      usage(stdout);
      return 1;
    }
    // Options without a value: each sets its flag.
    const std::pair<const char*, std::pair<bool*, bool>> flags[] = {
        {"--json", {&o.json_out, true}},
        {"--no-pairs", {&o.pairs, false}},
        {"--json-schema", {&o.json_schema, true}},
        {"--lenient", {&o.lenient, true}}};
    const auto flag = std::find_if(std::begin(flags), std::end(flags),
                                   [&](const auto& f) { return a == f.first; });
    if (flag != std::end(flags)) {
      *flag->second.first = flag->second.second;
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "bench_serve: %s needs a value (or is unknown)\n", a.c_str());
      return 2;
    }
    const std::string v = argv[++i];
    int64_t n = 0;
    bool ok = true;
    if (a == "--url") {
      o.url = v;
    } else if (a == "--clients") {
      ok = parse_integer(v, 1, 4096, n);
      o.clients = static_cast<int>(n);
    } else if (a == "--requests") {
      ok = parse_integer(v, 1, 10'000'000, n);
      o.requests = static_cast<int>(n);
    } else if (a == "--max-tokens") {
      const size_t colon = v.find_first_of(":-");
      int64_t lo = 0, hi = 0;
      if (colon == std::string::npos) {
        ok = parse_integer(v, 1, 1 << 20, lo);
        hi = lo;
      } else {
        ok = parse_integer(v.substr(0, colon), 1, 1 << 20, lo) &&
             parse_integer(v.substr(colon + 1), 1, 1 << 20, hi) && lo <= hi;
      }
      o.max_tokens_lo = static_cast<uint32_t>(lo);
      o.max_tokens_hi = static_cast<uint32_t>(hi);
    } else if (a == "--prompts") {
      ok = v == "mixed" || v == "short" || v == "medium" || v == "long";
      o.prompts = v;
    } else if (a == "--seed") {
      ok = parse_integer(v, 0, INT64_MAX, n);
      o.seed = static_cast<uint64_t>(n);
    } else if (a == "--model") {
      o.model = v;
    } else if (a == "--timeout") {
      ok = parse_number(v, 0.001, 86400, o.timeout);
    } else if (a == "--wall-limit") {
      ok = parse_number(v, 0.001, 86400 * 7, o.wall_limit);
    } else if (a == "--wait-ready") {
      ok = parse_number(v, 0, 86400, o.wait_ready);
    } else if (a == "--system-words") {
      ok = parse_integer(v, 0, 1 << 20, n);
      o.system_words = static_cast<int>(n);
    } else if (a == "--show-errors") {
      ok = parse_integer(v, 0, 1 << 20, n);
      o.show_errors = static_cast<int>(n);
    } else {
      std::fprintf(stderr, "bench_serve: unknown option %s (--help)\n", a.c_str());
      return 2;
    }
    if (!ok) {
      std::fprintf(stderr, "bench_serve: bad value for %s: '%s'\n", a.c_str(), v.c_str());
      return 2;
    }
  }
  if (o.url.empty()) {
    std::fprintf(stderr, "bench_serve: --url is required (--help)\n");
    return 2;
  }
  while (!o.url.empty() && o.url.back() == '/') o.url.pop_back();
  return 0;
}

// ---------------------------------------------------------------------------------------------
// The workload

// SplitMix64: the same numbers on every platform (std's distributions are not).
struct Rng {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint64_t below(uint64_t n) { return next() % n; }
  uint64_t between(uint64_t lo, uint64_t hi) { return lo + below(hi - lo + 1); }
};

constexpr const char* kWords[] = {
    "once", "upon",  "a",     "time",  "there", "was", "little", "girl",  "named",   "lily",
    "she",  "liked", "to",    "play",  "in",    "the", "park",   "with",  "her",     "dog",
    "one",  "day",   "they",  "saw",   "big",   "red", "ball",   "and",   "ran",     "fast",
    "boy",  "tom",   "he",    "had",   "toy",   "car", "sun",    "was",   "bright",  "happy",
    "mom",  "said",  "you",   "can",   "go",    "out", "but",    "be",    "careful", "tree",
    "bird", "sang",  "sweet", "song",  "cat",   "sat", "on",     "mat",   "friends", "shared",
    "cake", "at",    "home",  "night", "moon",  "sky", "blue",   "green", "garden",  "flower"};
constexpr size_t kWordCount = sizeof kWords / sizeof kWords[0];

struct Spec {
  bool chat = false, stream = false, sampled = false;
  std::string system;  // chat only; may be empty
  std::string prompt;
  uint32_t max_tokens = 16;
  uint64_t seed = 0;
  double temperature = 0;
  int pair = -1;  // the index of the request that must answer the same text, or -1
  int words = 0;
};

std::string words(Rng& rng, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) {
    if (i) s += ' ';
    s += kWords[rng.below(kWordCount)];
  }
  if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  return s;
}

int prompt_words(Rng& rng, const std::string& kind) {
  std::string k = kind;
  if (k == "mixed") {
    const uint64_t r = rng.below(10);
    k = r < 5 ? "short" : r < 8 ? "medium" : "long";
  }
  if (k == "short") return static_cast<int>(rng.between(1, 8));
  if (k == "medium") return static_cast<int>(rng.between(20, 60));
  return static_cast<int>(rng.between(100, 200));
}

// Pairs (2k, 2k+1) share everything but `stream`. Over k: the endpoint alternates, greedy and
// seeded sampling alternate every two pairs, and which of the pair streams every four.
// --no-pairs: one request per draw, with the same pattern (k counts requests, not pairs).
std::vector<Spec> make_workload(const Options& o) {
  Rng rng{o.seed * 0x2545F4914F6CDD1Dull + 1};
  Rng shared_rng{42};  // the shared system prompt does not depend on --seed
  const std::string shared_system = words(shared_rng, o.system_words);
  std::vector<Spec> specs;
  specs.reserve(static_cast<size_t>(o.requests));
  for (int k = 0; static_cast<int>(specs.size()) < o.requests; ++k) {
    Spec s;
    s.chat = k % 2 == 1 || o.json_schema;
    s.sampled = (k / 2) % 2 == 1;
    s.words = prompt_words(rng, o.prompts);
    s.prompt = words(rng, s.words);
    if (s.chat && rng.below(2) == 0) s.system = "You tell short stories for children.";
    if (o.system_words > 0) {  // every request a chat, streamed below (TTFT is the figure)
      s.chat = true;
      s.system = shared_system;
    }
    s.max_tokens = static_cast<uint32_t>(rng.between(o.max_tokens_lo, o.max_tokens_hi));
    s.seed = rng.next() >> 1;
    s.temperature = s.sampled ? 0.8 : 0.0;
    const bool first_streams = (k / 4) % 2 == 0 || o.system_words > 0;
    const int i = static_cast<int>(specs.size());
    if (!o.pairs) {  // one request per draw: streaming every other endpoint pair
      s.stream = first_streams;
      specs.push_back(s);
      continue;
    }
    Spec a = s, b = s;
    a.stream = first_streams;
    b.stream = !first_streams;
    const bool paired = i + 1 < o.requests;
    a.pair = paired ? i + 1 : -1;
    b.pair = i;
    specs.push_back(a);
    if (paired) specs.push_back(b);
  }
  return specs;
}

// --json-schema's response_format: a small record, in the subset every grammar engine takes.
constexpr const char* kResponseFormat = R"({"type": "json_schema", "json_schema": {
    "name": "character", "strict": true, "schema": {"type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"},
                   "mood": {"enum": ["happy", "sad", "calm"]},
                   "friends": {"type": "array", "items": {"type": "string"}, "maxItems": 3}},
    "required": ["name", "age", "mood"], "additionalProperties": false}}})";

std::string request_body(const Spec& s, const Options& o) {
  json j;
  if (!o.model.empty()) j["model"] = o.model;
  if (s.chat) {
    json messages = json::array();
    if (!s.system.empty()) messages.push_back({{"role", "system"}, {"content", s.system}});
    messages.push_back({{"role", "user"}, {"content", s.prompt}});
    j["messages"] = messages;
  } else {
    j["prompt"] = s.prompt;
  }
  if (o.json_schema) j["response_format"] = json::parse(kResponseFormat);
  j["max_tokens"] = s.max_tokens;
  j["temperature"] = s.temperature;
  if (s.sampled) {
    j["top_p"] = 0.95;
    j["seed"] = s.seed;
  }
  if (s.stream) {
    j["stream"] = true;
    j["stream_options"] = {{"include_usage", true}};
  }
  return j.dump();
}

// ---------------------------------------------------------------------------------------------
// One request and its validation

struct Outcome {
  bool finished = false;  // a final answer (valid or not) was had
  bool ok = false;
  std::string error;
  std::string text, finish_reason;
  int64_t prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0;
  int retries_429 = 0, retries_503 = 0;
  double latency = -1, ttft = -1;  // seconds (ttft: streaming only)
  std::vector<double> gaps;        // between content chunks (streaming only)
  int content_chunks = 0;
};

struct Fail {
  std::string what;
};

const json& field(const json& j, const char* name, const char* where) {
  if (!j.is_object() || !j.contains(name))
    throw Fail{std::string(where) + ": no '" + name + "' in " + j.dump().substr(0, 300)};
  return j.at(name);
}

std::string string_field(const json& j, const char* name, const char* where) {
  const json& v = field(j, name, where);
  if (!v.is_string()) throw Fail{std::string(where) + ": '" + name + "' is not a string"};
  return v.get<std::string>();
}

int64_t count_field(const json& j, const char* name, const char* where) {
  const json& v = field(j, name, where);
  if (!v.is_number_integer() || v.get<int64_t>() < 0)
    throw Fail{std::string(where) + ": '" + name + "' is not a count: " + v.dump()};
  return v.get<int64_t>();
}

void check_usage(const json& u, const Spec& s, Outcome& out) {
  if (!u.is_object()) throw Fail{"usage is not an object: " + u.dump()};
  out.prompt_tokens = count_field(u, "prompt_tokens", "usage");
  out.completion_tokens = count_field(u, "completion_tokens", "usage");
  const int64_t total = count_field(u, "total_tokens", "usage");
  if (out.prompt_tokens < 1) throw Fail{"usage.prompt_tokens is 0"};
  if (const auto d = u.find("prompt_tokens_details"); d != u.end() && d->is_object()) {
    out.cached_tokens = count_field(*d, "cached_tokens", "usage.prompt_tokens_details");
    if (out.cached_tokens > out.prompt_tokens)
      throw Fail{"usage: more cached tokens than prompt tokens"};
  }
  if (total != out.prompt_tokens + out.completion_tokens)
    throw Fail{"usage.total_tokens " + std::to_string(total) + " != prompt " +
               std::to_string(out.prompt_tokens) + " + completion " +
               std::to_string(out.completion_tokens)};
  if (out.completion_tokens > static_cast<int64_t>(s.max_tokens))
    throw Fail{"usage.completion_tokens " + std::to_string(out.completion_tokens) +
               " > max_tokens " + std::to_string(s.max_tokens)};
  if (out.completion_tokens == 0 && !out.text.empty()) throw Fail{"text without completion tokens"};
}

void check_finish(const std::string& reason) {
  if (reason != "stop" && reason != "length")
    throw Fail{"finish_reason is '" + reason + "', not stop or length"};
}

void check_header(const json& j, const char* object) {
  if (!j.is_object()) throw Fail{"the response is not a JSON object"};
  if (j.contains("error")) throw Fail{"error object: " + j["error"].dump().substr(0, 300)};
  if (string_field(j, "object", "response") != object)
    throw Fail{std::string("object is '") + j["object"].get<std::string>() + "', not " + object};
  if (string_field(j, "id", "response").empty()) throw Fail{"empty id"};
  (void)string_field(j, "model", "response");
  if (!field(j, "created", "response").is_number_integer()) throw Fail{"created not an integer"};
}

// --json-schema: an answer that ended by itself is one JSON object.
void check_json_content(const Options& o, const Outcome& out) {
  if (!o.json_schema || out.finish_reason != "stop") return;
  json v;
  try {
    v = json::parse(out.text);
  } catch (const std::exception& e) {
    throw Fail{std::string("the content is not JSON: ") + e.what()};
  }
  if (!v.is_object()) throw Fail{"the content is not a JSON object: " + out.text.substr(0, 200)};
}

void validate_whole(const std::string& body, const Spec& s, Outcome& out) {
  json j;
  try {
    j = json::parse(body);
  } catch (const std::exception& e) {
    throw Fail{std::string("body is not JSON: ") + e.what()};
  }
  check_header(j, s.chat ? "chat.completion" : "text_completion");
  const json& choices = field(j, "choices", "response");
  if (!choices.is_array() || choices.size() != 1) throw Fail{"choices is not one choice"};
  const json& c = choices[0];
  if (field(c, "index", "choices[0]") != 0) throw Fail{"choices[0].index is not 0"};
  if (s.chat) {
    const json& m = field(c, "message", "choices[0]");
    if (string_field(m, "role", "message") != "assistant") throw Fail{"message.role not assistant"};
    out.text = string_field(m, "content", "message");
  } else {
    out.text = string_field(c, "text", "choices[0]");
  }
  out.finish_reason = string_field(c, "finish_reason", "choices[0]");
  check_finish(out.finish_reason);
  check_usage(field(j, "usage", "response"), s, out);
}

// Server-sent events, fed in whatever pieces the socket gives.
class StreamChecker {
 public:
  StreamChecker(const Spec& s, bool lenient, Outcome& out, Clock::time_point start)
      : spec_(s), lenient_(lenient), out_(out), start_(start) {}

  void feed(const char* data, size_t n, Clock::time_point t) {
    buffer_.append(data, n);
    for (;;) {
      size_t end = buffer_.find("\n\n");
      size_t sep = 2;
      const size_t crlf = buffer_.find("\r\n\r\n");
      if (crlf != std::string::npos && (end == std::string::npos || crlf < end))
        end = crlf, sep = 4;
      if (end == std::string::npos) break;
      event(buffer_.substr(0, end), t);
      buffer_.erase(0, end + sep);
    }
    if (buffer_.size() > (size_t{1} << 22)) throw Fail{"an SSE event longer than 4 MiB"};
  }

  void finish() {
    if (!buffer_.empty() && buffer_.find_first_not_of("\r\n") != std::string::npos)
      throw Fail{"the stream ends inside an event: " + buffer_.substr(0, 200)};
    if (!done_) throw Fail{"the stream ended without [DONE]"};
    if (out_.finish_reason.empty()) throw Fail{"no chunk had a finish_reason"};
    if (!usage_) throw Fail{"no usage chunk (stream_options.include_usage)"};
    if (spec_.chat && !role_ && !lenient_) throw Fail{"no chunk gave the assistant role"};
    check_usage(*usage_, spec_, out_);
  }

 private:
  void event(const std::string& block, Clock::time_point t) {
    std::string data;
    bool has_data = false;
    size_t pos = 0;
    while (pos <= block.size()) {
      size_t nl = block.find('\n', pos);
      if (nl == std::string::npos) nl = block.size();
      std::string line = block.substr(pos, nl - pos);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      pos = nl + 1;
      if (line.empty() || line[0] == ':') continue;
      if (line.rfind("data:", 0) == 0) {
        std::string d = line.substr(5);
        if (!d.empty() && d[0] == ' ') d.erase(0, 1);
        if (has_data) data += '\n';
        data += d;
        has_data = true;
      }
    }
    if (!has_data) return;
    if (done_) throw Fail{"data after [DONE]"};
    if (data == "[DONE]") {
      done_ = true;
      return;
    }
    json j;
    try {
      j = json::parse(data);
    } catch (const std::exception& e) {
      throw Fail{std::string("a chunk is not JSON: ") + e.what() + ": " + data.substr(0, 200)};
    }
    check_header(j, spec_.chat ? "chat.completion.chunk" : "text_completion");
    const std::string id = j["id"].get<std::string>();
    if (id_.empty()) id_ = id;
    if (id != id_) throw Fail{"chunk ids differ: " + id_ + " then " + id};
    const json& choices = field(j, "choices", "chunk");
    if (!choices.is_array()) throw Fail{"chunk choices is not an array"};
    if (choices.empty()) {  // the usage chunk
      if (out_.finish_reason.empty()) throw Fail{"usage chunk before the finish_reason"};
      if (usage_) throw Fail{"two usage chunks"};
      usage_ = field(j, "usage", "usage chunk");
      return;
    }
    if (choices.size() != 1) throw Fail{"a chunk has more than one choice"};
    if (!out_.finish_reason.empty()) throw Fail{"a choice chunk after the finish_reason"};
    const bool usage_here = j.contains("usage") && !j["usage"].is_null();
    if (usage_here && !lenient_) throw Fail{"usage in a choice chunk: " + j["usage"].dump()};
    const json& c = choices[0];
    if (field(c, "index", "chunk choice") != 0) throw Fail{"chunk choice index is not 0"};
    std::string piece;
    if (spec_.chat) {
      const json& delta = field(c, "delta", "chunk choice");
      if (!delta.is_object()) throw Fail{"delta is not an object"};
      if (delta.contains("role")) {
        if (delta["role"] != "assistant") throw Fail{"delta.role is not assistant"};
        role_ = true;
      }
      // OpenAI's deltas may hold "content": null (no text in this chunk).
      if (delta.contains("content") && !delta["content"].is_null()) {
        if (!delta["content"].is_string()) throw Fail{"delta.content is not a string"};
        piece = delta["content"].get<std::string>();
      }
    } else {
      piece = string_field(c, "text", "chunk choice");
    }
    if (!piece.empty()) {
      if (out_.ttft < 0)
        out_.ttft = seconds_between(start_, t);
      else
        out_.gaps.push_back(seconds_between(last_piece_, t));
      last_piece_ = t;
      out_.text += piece;
      ++out_.content_chunks;
    }
    const json& reason = field(c, "finish_reason", "chunk choice");
    if (!reason.is_null()) {
      if (!reason.is_string()) throw Fail{"finish_reason is not a string"};
      out_.finish_reason = reason.get<std::string>();
      check_finish(out_.finish_reason);
    }
    if (usage_here) {
      if (out_.finish_reason.empty()) throw Fail{"usage before the finish_reason"};
      usage_ = j["usage"];
    }
  }

  const Spec& spec_;
  const bool lenient_;
  Outcome& out_;
  Clock::time_point start_, last_piece_;
  std::string buffer_, id_;
  bool done_ = false, role_ = false;
  std::optional<json> usage_;
};

std::string short_body(const std::string& b) {
  std::string s = b.substr(0, 300);
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

// Runs one request to its final answer: retries 429/503 after Retry-After (while the wall limit
// allows), validates the answer.
void run_request(httplib::Client& cli, const Spec& s, const Options& o,
                 Clock::time_point wall_deadline, Outcome& out) {
  const std::string body = request_body(s, o);
  const char* path = s.chat ? "/v1/chat/completions" : "/v1/completions";
  for (;;) {
    const auto start = Clock::now();
    const auto deadline =
        std::min(wall_deadline, start + std::chrono::duration_cast<Clock::duration>(
                                            std::chrono::duration<double>(o.timeout)));
    if (deadline <= start) {
      out.error = "not finished within the wall limit";
      return;
    }
    const auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - start);
    cli.set_read_timeout(static_cast<time_t>(left.count() / 1000000),
                         static_cast<time_t>(left.count() % 1000000));
    cli.set_write_timeout(static_cast<time_t>(std::min<int64_t>(10, left.count() / 1000000 + 1)),
                          0);

    int status = 0;
    std::string raw, failure;
    bool timed_out = false;
    Outcome attempt;  // this try's figures
    StreamChecker checker(s, o.lenient, attempt, start);

    httplib::Request req;
    req.method = "POST";
    req.path = path;
    req.body = body;
    req.headers = {{"Content-Type", "application/json"},
                   {"Accept", s.stream ? "text/event-stream" : "application/json"}};
    req.response_handler = [&](const httplib::Response& r) {
      status = r.status;
      return true;
    };
    req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
      const auto t = Clock::now();
      if (t > deadline) {
        timed_out = true;
        return false;
      }
      if (status == 200 && s.stream) {
        try {
          checker.feed(data, n, t);
        } catch (const Fail& f) {
          failure = f.what;
          return false;
        } catch (const std::exception& e) {  // json's type errors and the like
          failure = std::string("malformed stream chunk: ") + e.what();
          return false;
        }
      } else {
        if (raw.size() + n > (size_t{16} << 20)) {
          failure = "a response body over 16 MiB";
          return false;
        }
        raw.append(data, n);
      }
      return true;
    };

    const httplib::Result res = cli.send(req);
    const auto end = Clock::now();
    if (!failure.empty()) {
      out.error = failure;
      return;
    }
    if (!res) {
      if (timed_out ||
          (end >= deadline - std::chrono::milliseconds(5) && res.error() == httplib::Error::Read)) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "no complete answer within %.3g s",
                      seconds_between(start, deadline));
        out.error = buf;
      } else {
        out.error = "HTTP client error: " + httplib::to_string(res.error());
      }
      return;
    }
    status = res->status;
    if (status == 429 || status == 503) {
      ++(status == 429 ? out.retries_429 : out.retries_503);
      double wait = 1;
      const std::string ra = res->get_header_value("Retry-After");
      if (!ra.empty()) {
        double v = 0;
        if (parse_number(ra, 0, 3600, v)) wait = v;
      }
      wait = std::clamp(wait, 0.05, 30.0);
      const auto resume = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(wait));
      if (resume >= wall_deadline) {
        out.error = "still " + std::to_string(status) + " at the wall limit";
        return;
      }
      std::this_thread::sleep_until(resume);
      continue;
    }
    out.latency = seconds_between(start, end);
    try {
      if (status != 200) throw Fail{"HTTP " + std::to_string(status) + ": " + short_body(raw)};
      const std::string ctype = res->get_header_value("Content-Type");
      if (s.stream) {
        if (ctype.rfind("text/event-stream", 0) != 0)
          throw Fail{"a stream with Content-Type '" + ctype + "'"};
        checker.finish();
      } else {
        if (ctype.rfind("application/json", 0) != 0)
          throw Fail{"a response with Content-Type '" + ctype + "'"};
        validate_whole(raw, s, attempt);
      }
      check_json_content(o, attempt);
    } catch (const Fail& f) {
      out.error = f.what;
      return;
    } catch (const std::exception& e) {  // json's type errors and the like
      out.error = std::string("malformed response: ") + e.what();
      return;
    }
    out.text = std::move(attempt.text);
    out.finish_reason = attempt.finish_reason;
    out.prompt_tokens = attempt.prompt_tokens;
    out.cached_tokens = attempt.cached_tokens;
    out.completion_tokens = attempt.completion_tokens;
    out.ttft = attempt.ttft;
    out.gaps = std::move(attempt.gaps);
    out.content_chunks = attempt.content_chunks;
    out.ok = true;
    return;
  }
}

// ---------------------------------------------------------------------------------------------
// The server's /metrics

std::optional<std::map<std::string, double>> fetch_metrics(const Options& o) {
  httplib::Client cli(o.url);
  cli.set_connection_timeout(5, 0);
  cli.set_read_timeout(10, 0);
  auto res = cli.Get("/metrics");
  if (!res || res->status != 200) return std::nullopt;
  std::map<std::string, double> m;
  size_t pos = 0;
  const std::string& b = res->body;
  while (pos < b.size()) {
    size_t nl = b.find('\n', pos);
    if (nl == std::string::npos) nl = b.size();
    const std::string line = b.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.empty() || line[0] == '#') continue;
    const size_t sp = line.rfind(' ');
    if (sp == std::string::npos) continue;
    double v = 0;
    if (parse_number(line.substr(sp + 1), -1e300, 1e300, v)) m[line.substr(0, sp)] = v;
  }
  return m;
}

bool wait_ready(const Options& o) {
  if (o.wait_ready <= 0) return true;
  const auto until = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                        std::chrono::duration<double>(o.wait_ready));
  httplib::Client cli(o.url);
  cli.set_connection_timeout(2, 0);
  cli.set_read_timeout(5, 0);
  for (;;) {
    auto res = cli.Get("/health");
    if (res && res->status == 200) return true;
    if (Clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

// ---------------------------------------------------------------------------------------------
// Figures

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const double rank = std::ceil(p / 100.0 * static_cast<double>(v.size()));
  const size_t i = static_cast<size_t>(std::clamp(rank, 1.0, static_cast<double>(v.size()))) - 1;
  return v[i];
}

json number_or_null(double v) {
  return std::isfinite(v) ? json(v) : json(nullptr);
}

std::string ms(double seconds) {
  if (!std::isfinite(seconds)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f ms", seconds * 1e3);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  Options o;
  if (const int r = parse_options(argc, argv, o); r != 0) return r == 1 ? 0 : 2;

  // A last resort past the wall limit: every request is bounded by it already.
  std::mutex watchdog_mutex;
  std::condition_variable watchdog_cv;
  bool all_done = false;
  std::thread watchdog([&] {
    std::unique_lock lock(watchdog_mutex);
    const auto limit = std::chrono::duration<double>(o.wall_limit + o.wait_ready + 30);
    if (!watchdog_cv.wait_for(lock, limit, [&] { return all_done; })) {
      std::fprintf(stderr, "bench_serve: still running %.0f s past the wall limit: giving up\n",
                   30.0);
      std::fflush(stderr);
      std::_Exit(3);
    }
  });
  const auto stop_watchdog = [&] {
    {
      std::lock_guard lock(watchdog_mutex);
      all_done = true;
    }
    watchdog_cv.notify_all();
    watchdog.join();
  };

  if (!wait_ready(o)) {
    std::fprintf(stderr, "bench_serve: %s/health did not answer 200 within %.0f s\n", o.url.c_str(),
                 o.wait_ready);
    stop_watchdog();
    return 1;
  }

  const std::vector<Spec> specs = make_workload(o);
  std::vector<Outcome> outcomes(specs.size());
  const auto before = fetch_metrics(o);

  std::atomic<size_t> next{0};
  const auto t0 = Clock::now();
  const auto wall_deadline =
      t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.wall_limit));
  std::vector<std::thread> clients;
  const int nclients = std::min<int>(o.clients, static_cast<int>(specs.size()));
  for (int c = 0; c < nclients; ++c) {
    clients.emplace_back([&] {
      httplib::Client cli(o.url);
      cli.set_keep_alive(true);
      cli.set_connection_timeout(5, 0);
      cli.set_tcp_nodelay(true);
      for (;;) {
        const size_t i = next.fetch_add(1);
        if (i >= specs.size()) return;
        Outcome& out = outcomes[i];
        if (Clock::now() >= wall_deadline) {
          out.error = "not started within the wall limit";
        } else {
          run_request(cli, specs[i], o, wall_deadline, out);
        }
        out.finished = true;
      }
    });
  }
  for (auto& t : clients) t.join();
  const double wall = seconds_between(t0, Clock::now());
  const bool wall_hit = Clock::now() >= wall_deadline;
  const auto after = fetch_metrics(o);
  stop_watchdog();
  int streamed = 0;
  for (const Spec& s : specs) streamed += s.stream ? 1 : 0;

  // Pairs must agree (the same request, streamed and not).
  int mismatches = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    const int j = specs[i].pair;
    if (j <= static_cast<int>(i) || !outcomes[i].ok || !outcomes[static_cast<size_t>(j)].ok)
      continue;
    const Outcome& a = outcomes[i];
    const Outcome& b = outcomes[static_cast<size_t>(j)];
    if (a.text != b.text || a.completion_tokens != b.completion_tokens ||
        a.finish_reason != b.finish_reason) {
      ++mismatches;
      Outcome& bad = outcomes[static_cast<size_t>(j)];
      bad.ok = false;
      bad.error = "differs from request " + std::to_string(i) + " (the same request, " +
                  (specs[i].stream ? "streamed" : "not streamed") +
                  "): " + std::to_string(a.completion_tokens) + " tokens '" + short_body(a.text) +
                  "' vs " + std::to_string(b.completion_tokens) + " tokens '" + short_body(b.text) +
                  "'";
    }
  }

  int ok = 0, errors = 0, r429 = 0, r503 = 0;
  int64_t completion_tokens = 0, prompt_tokens = 0, cached_tokens = 0;
  std::vector<double> latency, ttft, gaps;
  std::map<std::string, int> error_kinds;
  int shown = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    const Outcome& out = outcomes[i];
    r429 += out.retries_429;
    r503 += out.retries_503;
    if (out.ok || (!out.error.empty() && out.error.rfind("differs from", 0) == 0)) {
      // A mismatched pair still produced its tokens.
      completion_tokens += out.completion_tokens;
      prompt_tokens += out.prompt_tokens;
      cached_tokens += out.cached_tokens;
      latency.push_back(out.latency);
      if (specs[i].stream) {
        if (out.ttft >= 0) ttft.push_back(out.ttft);
        gaps.insert(gaps.end(), out.gaps.begin(), out.gaps.end());
      }
    }
    if (out.ok) {
      ++ok;
    } else {
      ++errors;
      if (shown++ < o.show_errors)
        std::fprintf(stderr, "bench_serve: request %zu (%s, %s, %d words, max_tokens %u): %s\n", i,
                     specs[i].chat ? "chat" : "completions", specs[i].stream ? "stream" : "whole",
                     specs[i].words, specs[i].max_tokens,
                     out.error.empty() ? "unknown failure" : out.error.c_str());
    }
  }

  // The server's own decode rate over the run.
  double d_tokens = NAN, d_seconds = NAN, d_passes = NAN, p_tokens = NAN, p_seconds = NAN;
  if (before && after) {
    const auto delta = [&](const char* name) {
      const auto a = after->find(name), b = before->find(name);
      return a != after->end() && b != before->end() ? a->second - b->second : NAN;
    };
    d_tokens = delta("brise_decode_tokens_total");
    d_seconds = delta("brise_decode_seconds_total");
    d_passes = delta("brise_forward_passes_total");
    p_tokens = delta("brise_prefill_tokens_total");
    p_seconds = delta("brise_prefill_seconds_total");
  }
  const double server_decode_tps = d_seconds > 0 ? d_tokens / d_seconds : NAN;
  const double pass_ms = d_passes > 0 ? (d_seconds + p_seconds) / d_passes * 1e3 : NAN;
  const double decode_rows_per_pass = d_passes > 0 ? d_tokens / d_passes : NAN;

  const double rps = static_cast<double>(ok) / wall;
  const double tps = static_cast<double>(completion_tokens) / wall;
  if (o.json_out) {
    json j = {{"url", o.url},
              {"clients", nclients},
              {"requests", specs.size()},
              {"streamed", streamed},
              {"seed", o.seed},
              {"prompts", o.prompts},
              {"pairs", o.pairs},
              {"system_words", o.system_words},
              {"json_schema", o.json_schema},
              {"max_tokens", {o.max_tokens_lo, o.max_tokens_hi}},
              {"ok", ok},
              {"errors", errors},
              {"mismatches", mismatches},
              {"retries_429", r429},
              {"retries_503", r503},
              {"wall_limit_reached", wall_hit},
              {"wall_seconds", wall},
              {"requests_per_second", rps},
              {"prompt_tokens", prompt_tokens},
              {"cached_tokens", cached_tokens},
              {"completion_tokens", completion_tokens},
              {"completion_tokens_per_second", tps},
              {"latency_p50_ms", number_or_null(percentile(latency, 50) * 1e3)},
              {"latency_p99_ms", number_or_null(percentile(latency, 99) * 1e3)},
              {"ttft_p50_ms", number_or_null(percentile(ttft, 50) * 1e3)},
              {"ttft_p99_ms", number_or_null(percentile(ttft, 99) * 1e3)},
              {"per_token_p50_ms", number_or_null(percentile(gaps, 50) * 1e3)},
              {"per_token_p99_ms", number_or_null(percentile(gaps, 99) * 1e3)},
              {"server_decode_tokens", number_or_null(d_tokens)},
              {"server_decode_seconds", number_or_null(d_seconds)},
              {"server_decode_tokens_per_second", number_or_null(server_decode_tps)},
              {"server_prefill_tokens", number_or_null(p_tokens)},
              {"server_prefill_seconds", number_or_null(p_seconds)},
              {"server_forward_passes", number_or_null(d_passes)},
              {"server_decode_rows_per_pass", number_or_null(decode_rows_per_pass)},
              {"server_ms_per_pass", number_or_null(pass_ms)}};
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("bench_serve: %zu requests (%d streamed) by %d clients to %s, seed %" PRIu64
                ", prompts %s, max_tokens %u..%u\n",
                specs.size(), streamed, nclients, o.url.c_str(), o.seed, o.prompts.c_str(),
                o.max_tokens_lo, o.max_tokens_hi);
    std::printf("  valid %d, errors %d (pair mismatches %d), retried: 429 x%d, 503 x%d%s\n", ok,
                errors, mismatches, r429, r503, wall_hit ? ", WALL LIMIT REACHED" : "");
    std::printf("  wall %.2f s: %.2f requests/s, %.1f completion tokens/s (%" PRId64
                " completion, %" PRId64 " prompt tokens, %" PRId64 " of them cached)\n",
                wall, rps, tps, completion_tokens, prompt_tokens, cached_tokens);
    std::printf("  latency    p50 %-10s p99 %s\n", ms(percentile(latency, 50)).c_str(),
                ms(percentile(latency, 99)).c_str());
    std::printf("  TTFT       p50 %-10s p99 %s   (streamed, to the first content chunk)\n",
                ms(percentile(ttft, 50)).c_str(), ms(percentile(ttft, 99)).c_str());
    std::printf("  per token  p50 %-10s p99 %s   (gaps between content chunks)\n",
                ms(percentile(gaps, 50)).c_str(), ms(percentile(gaps, 99)).c_str());
    if (std::isfinite(d_tokens) && d_tokens > 0)
      std::printf(
          "  server: decode %.0f tokens in %.2f s = %.1f tokens/s; prefill %.0f tokens in "
          "%.2f s; %.0f passes, %.2f decode rows/pass, %.1f ms/pass\n",
          d_tokens, d_seconds, server_decode_tps, p_tokens, p_seconds, d_passes,
          decode_rows_per_pass, pass_ms);
    else if (std::isfinite(d_tokens))
      std::printf("  server: no decode steps\n");
    else
      std::printf("  server: /metrics unavailable\n");
  }
  std::fflush(stdout);
  if (wall_hit && errors > 0) return 3;
  return errors == 0 ? 0 : 1;
}
