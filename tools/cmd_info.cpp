// brise info MODEL.gguf [--json]: hyperparameters, tokenizer summary, other metadata and the
// tensor table of any valid GGUF file (brise's own or llama.cpp's). Missing keys show as "-"
// (null in JSON); only a malformed file is an error.
#include <algorithm>
#include <charconv>
#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "brise/error.hpp"
#include "brise/gguf.hpp"
#include "brise/model_config.hpp"
#include "brise/system.hpp"
#include "cli_args.hpp"
#include "commands.hpp"
#include "format.hpp"

namespace brise::cli {
namespace {

using gguf::Array;
using gguf::Value;
using gguf::ValueType;
using nlohmann::json;

constexpr size_t kArrayHead = 4;        // items shown of a long array
constexpr size_t kShortArray = 8;       // arrays up to this long are shown whole
constexpr size_t kMaxStringShown = 80;  // longer strings are cut in the text output

// An f32 as the double with the same shortest decimal form, so that 1e-5f prints as 1e-05
// rather than 9.99999974737875e-06.
double shortest_double(float f) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof(buf), f);
  double d = f;
  std::from_chars(buf, r.ptr, d);
  return d;
}

// A metadata value as JSON; arrays longer than kShortArray are summarised.
json to_json(const Value& v) {
  return std::visit(
      [](const auto& x) -> json {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, Array>) {
          json items = json::array();
          const size_t shown = x.items.size() <= kShortArray ? x.items.size() : kArrayHead;
          for (size_t i = 0; i < shown; ++i) items.push_back(to_json(x.items[i]));
          if (shown == x.items.size()) return items;
          return json{{"array_of", std::string(gguf::value_type_name(x.elem_type))},
                      {"count", x.items.size()},
                      {"first", items}};
        } else if constexpr (std::is_same_v<T, float>) {
          return shortest_double(x);
        } else if constexpr (std::is_same_v<T, uint8_t> || std::is_same_v<T, int8_t>) {
          return static_cast<int>(x);  // not a char
        } else {
          return x;
        }
      },
      v.data);
}

// Strings for a terminal: control bytes escaped, long ones cut.
std::string printable(const std::string& s, size_t limit) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < limit; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > limit) out += "... (" + std::to_string(s.size()) + " bytes)";
  return out;
}

std::string text_of(const json& j);

std::string text_of_value(const Value& v) {
  if (const auto* a = std::get_if<Array>(&v.data)) {
    std::string out = "[" + std::string(gguf::value_type_name(a->elem_type)) + " x " +
                      std::to_string(a->items.size()) + "]";
    const size_t shown =
        std::min(a->items.size(), a->items.size() <= kShortArray ? kShortArray : kArrayHead);
    for (size_t i = 0; i < shown; ++i) out += (i ? ", " : " ") + text_of_value(a->items[i]);
    if (shown < a->items.size()) out += ", ...";
    return out;
  }
  if (const auto* s = std::get_if<std::string>(&v.data))
    return "\"" + printable(*s, kMaxStringShown) + "\"";
  return text_of(to_json(v));
}

std::string text_of(const json& j) {
  if (j.is_null()) return "-";
  if (j.is_string()) return printable(j.get<std::string>(), kMaxStringShown);
  return j.dump();
}

std::string type_name(const gguf::TensorInfo& t) {
  return std::string(gguf::ggml_type_name(static_cast<uint32_t>(t.type)));
}

// One line of the hyperparameter or tokenizer section.
struct Row {
  std::string label;  // shown in text
  std::string name;   // JSON member
  json value;         // null when absent
  std::string note;   // how a derived value was obtained
};

class Report {
 public:
  explicit Report(const gguf::File& f) : f_(f) {
    if (const Value* a = f.find("general.architecture"); a && a->type() == ValueType::STRING)
      arch_ = a->as_string("general.architecture");
    use("general.architecture");
    use("general.name");
    use("general.alignment");
    build_hyperparameters();
    build_tokenizer();
  }

  json to_json_object() const {
    json j;
    j["file"] = f_.name();
    j["file_size"] = f_.file_size();
    j["version"] = f_.version();
    j["alignment"] = f_.alignment();
    j["architecture"] = value_or_null("general.architecture");
    j["name"] = value_or_null("general.name");
    json hp = json::object();
    for (const auto& r : hyper_) hp[r.name] = r.value;
    j["hyperparameters"] = hp;
    j["sliding_window"] = sliding_window_;
    j["sliding_window_pattern"] = pattern_;
    j["kv_cache"] = kv_cache_;
    json tok = json::object();
    for (const auto& r : tokenizer_) tok[r.name] = r.value;
    j["tokenizer"] = tok;
    json other = json::object();
    for (const auto& [key, value] : f_.metadata())
      if (!used_.count(key))
        other[key] = {{"type", std::string(gguf::value_type_name(value.type()))},
                      {"value", to_json(value)}};
    j["other_metadata"] = other;
    json tensors = json::array();
    for (const auto& t : f_.tensors())
      tensors.push_back({{"name", t.name},
                         {"type", type_name(t)},
                         {"dims", t.dims},
                         {"offset", t.offset},
                         {"bytes", t.n_bytes}});
    j["tensors"] = tensors;
    json by_type = json::object();
    for (const auto& [type, total] : totals_by_type())
      by_type[type] = {{"tensors", total.first}, {"bytes", total.second}};
    j["totals"] = {
        {"tensors", f_.tensors().size()}, {"bytes", total_bytes()}, {"by_type", by_type}};
    json built = json::array();
    for (const auto& s : built_kernel_sets())
      built.push_back(
          {{"name", s.name}, {"instructions", s.instructions}, {"runs_here", s.runs_here}});
    const auto active = active_kernel_set();
    j["kernels"] = {
        {"active", active.name}, {"instructions", active.instructions}, {"built", built}};
    return j;
  }

  void print_text(std::ostream& out) const {
    const auto line = [&](const std::string& label, const std::string& value) {
      out << "  " << label << std::string(label.size() < 36 ? 36 - label.size() : 1, ' ') << value
          << "\n";
    };
    out << "file          " << f_.name() << "\n";
    out << "size          " << f_.file_size() << " bytes (" << format_bytes(f_.file_size())
        << ")\n";
    out << "GGUF version  " << f_.version() << "\n";
    out << "alignment     " << f_.alignment() << "\n";
    out << "architecture  " << text_of(value_or_null("general.architecture")) << "\n";
    out << "name          " << text_of(value_or_null("general.name")) << "\n";

    out << "\nhyperparameters (" << prefix() << "*)\n";
    for (const auto& r : hyper_)
      line(r.label, text_of(r.value) + (r.note.empty() || r.value.is_null() ? "" : " " + r.note));
    line("sliding_window",
         sliding_window_.is_null() ? "none (full attention)" : text_of(sliding_window_));
    if (!pattern_.is_null()) line("sliding_window_pattern", pattern_text());
    if (!kv_cache_.is_null()) {
      const uint64_t f32 = kv_cache_["bytes_f32"], f16 = kv_cache_["bytes_f16"];
      std::string q8;
      if (kv_cache_.contains("bytes_q8_0"))
        q8 = ", " + format_bytes(kv_cache_["bytes_q8_0"].get<uint64_t>()) + " q8_0";
      line("kv_cache (whole context)", format_bytes(f32) + " f32, " + format_bytes(f16) + " f16" +
                                           q8 + " (" + kv_positions_text() + ")");
    }

    out << "\ntokenizer\n";
    for (const auto& r : tokenizer_) line(r.label, text_of(r.value));

    size_t n_other = 0;
    for (const auto& [key, value] : f_.metadata()) n_other += used_.count(key) ? 0 : 1;
    out << "\nother metadata (" << n_other << " keys)\n";
    for (const auto& [key, value] : f_.metadata()) {
      if (used_.count(key)) continue;
      // Arrays name their element type already.
      const bool is_array = value.type() == ValueType::ARRAY;
      line(printable(key, kMaxStringShown),
           text_of_value(value) +
               (is_array ? "" : "  (" + std::string(gguf::value_type_name(value.type())) + ")"));
    }

    out << "\ntensors\n";
    size_t name_w = 4, dims_w = 4;
    for (const auto& t : f_.tensors()) {
      name_w = std::max(name_w, printable(t.name, 200).size());
      dims_w = std::max(dims_w, format_dims(t.dims).size());
    }
    const auto pad = [](std::string s, size_t w) {
      if (s.size() < w) s += std::string(w - s.size(), ' ');
      return s;
    };
    out << "  " << pad("name", name_w) << "  " << pad("type", 5) << "  " << pad("dims", dims_w)
        << "  bytes\n";
    for (const auto& t : f_.tensors())
      out << "  " << pad(printable(t.name, 200), name_w) << "  " << pad(type_name(t), 5) << "  "
          << pad(format_dims(t.dims), dims_w) << "  " << t.n_bytes << "\n";
    out << "\ntotals: " << f_.tensors().size() << " tensors, " << total_bytes() << " bytes ("
        << format_bytes(total_bytes()) << ")\n";
    for (const auto& [type, total] : totals_by_type())
      out << "  " << pad(type, 5) << "  " << total.first << " tensors, " << total.second
          << " bytes\n";

    const auto active = active_kernel_set();
    out << "\nkernels       " << active.name << " (" << active.instructions << ")\n";
    out << "  built:      ";
    for (const auto& s : built_kernel_sets())
      out << " " << s.name << (s.runs_here ? "" : " (not on this CPU)");
    out << "\n";
  }

 private:
  std::string prefix() const { return (arch_.empty() ? "llama" : arch_) + "."; }

  void use(const std::string& key) { used_.insert(key); }

  json value_or_null(const std::string& key) const {
    const Value* v = f_.find(key);
    return v ? to_json(*v) : json();
  }

  // A key's value, marking it as shown.
  json take(const std::string& key) {
    use(key);
    return value_or_null(key);
  }

  // An unsigned value when the key holds a non-negative integer, for derived figures.
  std::optional<uint64_t> uint_of(const std::string& key) const {
    const Value* v = f_.find(key);
    if (!v) return std::nullopt;
    try {
      return v->as_uint(key);
    } catch (const Error&) {
      return std::nullopt;
    }
  }

  void build_hyperparameters() {
    const std::string p = prefix();
    const auto add = [&](std::string label, std::string name, const std::string& key) {
      hyper_.push_back({std::move(label), std::move(name), take(p + key), ""});
    };
    add("context_length", "context_length", "context_length");
    add("embedding_length (dim)", "embedding_length", "embedding_length");
    add("block_count (layers)", "block_count", "block_count");
    add("feed_forward_length", "feed_forward_length", "feed_forward_length");
    add("attention.head_count", "head_count", "attention.head_count");
    add("attention.head_count_kv", "head_count_kv", "attention.head_count_kv");
    // head_dim: attention.key_length, else embedding_length / head_count.
    Row head_dim{"head_dim", "head_dim", take(p + "attention.key_length"),
                 "(attention.key_length)"};
    if (head_dim.value.is_null()) {
      const auto dim = uint_of(p + "embedding_length");
      const auto heads = uint_of(p + "attention.head_count");
      if (dim && heads && *heads > 0) {
        head_dim.value = *dim / *heads;
        head_dim.note = "(embedding_length / head_count)";
      }
    }
    hyper_.push_back(std::move(head_dim));
    add("rope.freq_base", "rope_freq_base", "rope.freq_base");
    add("attention.layer_norm_rms_epsilon", "rms_norm_eps", "attention.layer_norm_rms_epsilon");
    Row vocab{"vocab_size", "vocab_size", take(p + "vocab_size"), "(" + p + "vocab_size)"};
    if (vocab.value.is_null()) {
      if (const Value* t = f_.find("tokenizer.ggml.tokens"); t && t->type() == ValueType::ARRAY) {
        vocab.value = std::get<Array>(t->data).items.size();
        vocab.note = "(length of tokenizer.ggml.tokens)";
      }
    }
    hyper_.push_back(std::move(vocab));
    sliding_window_ = take("brise.attention.sliding_window");
    if (json llama = take(p + "attention.sliding_window"); !llama.is_null())
      sliding_window_ = llama;
    pattern_ = take(p + "attention.sliding_window_pattern");
    build_kv_cache();
  }

  // The KV cache a session of the model's context holds at most, layer by layer (each windowed
  // layer a ring of its window). Only for a file whose hyperparameters are valid.
  void build_kv_cache() {
    ModelConfig c;
    try {
      c = read_model_config(f_);
    } catch (const Error&) {
      return;  // shown as they are above; brise info describes invalid files too
    }
    const auto slots = kv_cache_slots(c.layer_windows(), c.context_length);
    kv_cache_ = {{"context_length", c.context_length},
                 {"positions_per_layer", slots},
                 {"bytes_f32", kv_cache_bytes(c, slots, TensorType::F32)},
                 {"bytes_f16", kv_cache_bytes(c, slots, TensorType::F16)}};
    if (c.head_dim % 32 == 0)  // q8_0 blocks of 32 values of a head
      kv_cache_["bytes_q8_0"] = kv_cache_bytes(c, slots, TensorType::Q8_0);
  }

  // "WWWF" for windowed, windowed, windowed, full, with a count.
  std::string pattern_text() const {
    if (!pattern_.is_array()) return text_of(pattern_);
    std::string s;
    size_t windowed = 0;
    for (const auto& v : pattern_) {
      const bool w = v.is_boolean() && v.get<bool>();
      s += w ? 'W' : 'F';
      windowed += w ? 1 : 0;
    }
    return s + " (W: sliding window, F: full attention; " + std::to_string(windowed) + " of " +
           std::to_string(pattern_.size()) + " layers windowed)";
  }

  // "4 x 16 + 1 x 2048 positions": how many layers hold how many positions.
  std::string kv_positions_text() const {
    std::map<uint64_t, size_t> layers_by_positions;
    for (const auto& p : kv_cache_["positions_per_layer"]) ++layers_by_positions[p.get<uint64_t>()];
    std::string s;
    for (const auto& [positions, layers] : layers_by_positions)
      s += (s.empty() ? "" : " + ") + std::to_string(layers) +
           (layers == 1 ? " layer" : " layers") + " x " + std::to_string(positions);
    return s + " positions";
  }

  void build_tokenizer() {
    const auto add = [&](std::string label, const std::string& key) {
      tokenizer_.push_back({label, label, take(key), ""});
    };
    add("model", "tokenizer.ggml.model");
    Row tokens{"tokens", "tokens", json(), ""};
    if (const Value* t = f_.find("tokenizer.ggml.tokens"); t && t->type() == ValueType::ARRAY)
      tokens.value = std::get<Array>(t->data).items.size();
    use("tokenizer.ggml.tokens");
    tokenizer_.push_back(std::move(tokens));
    add("bos_token_id", "tokenizer.ggml.bos_token_id");
    add("eos_token_id", "tokenizer.ggml.eos_token_id");
    add("unknown_token_id", "tokenizer.ggml.unknown_token_id");
    add("add_bos_token", "tokenizer.ggml.add_bos_token");
    add("add_space_prefix", "tokenizer.ggml.add_space_prefix");
    add("remove_extra_whitespaces", "tokenizer.ggml.remove_extra_whitespaces");
    add("byte_fallback", "brise.tokenizer.byte_fallback");
  }

  uint64_t total_bytes() const {
    uint64_t total = 0;
    for (const auto& t : f_.tensors()) total += t.n_bytes;
    return total;
  }

  std::map<std::string, std::pair<uint64_t, uint64_t>> totals_by_type() const {
    std::map<std::string, std::pair<uint64_t, uint64_t>> by_type;
    for (const auto& t : f_.tensors()) {
      auto& entry = by_type[type_name(t)];
      entry.first += 1;
      entry.second += t.n_bytes;
    }
    return by_type;
  }

  const gguf::File& f_;
  std::string arch_;
  std::set<std::string> used_;
  std::vector<Row> hyper_;
  std::vector<Row> tokenizer_;
  json sliding_window_;
  json pattern_;   // llama.cpp's per-layer pattern, as stored
  json kv_cache_;  // null when the hyperparameters are invalid
};

}  // namespace

int cmd_info(const Args& args) {
  std::string model;
  bool as_json = false;
  ArgParser p("info", "MODEL.gguf [--json]",
              "Shows a GGUF model's format, hyperparameters, tokenizer, other metadata and\n"
              "tensors. Works on any valid GGUF version 3 file; a malformed file is an error.");
  p.positional("MODEL.gguf", &model, "the model file");
  p.flag("--json", &as_json, "print one JSON object instead of text");
  if (!p.parse(args)) return 0;

  // Tensors of ggml types brise does not compute with (e.g. llama.cpp's k-quants) are listed.
  gguf::ReadLimits limits;
  limits.accept_foreign_tensor_types = true;
  const auto file = gguf::File::open(model, limits);
  const Report report(*file);
  if (as_json) {
    // Invalid UTF-8 in metadata strings is replaced rather than failing the dump.
    std::cout << report.to_json_object().dump(2, ' ', false, json::error_handler_t::replace)
              << "\n";
  } else {
    report.print_text(std::cout);
  }
  return std::cout.good() ? 0 : 1;
}

}  // namespace brise::cli
