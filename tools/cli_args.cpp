#include "cli_args.hpp"

#include <charconv>
#include <cmath>
#include <iostream>
#include <sstream>

namespace brise::cli {
namespace {

std::vector<std::string> split_names(const std::string& names) {
  std::vector<std::string> out;
  std::stringstream ss(names);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(item);
  return out;
}

int64_t parse_int(const std::string& text, const std::string& option) {
  int64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || text.empty())
    throw UsageError("option " + option + " expects an integer, got '" + text + "'");
  return value;
}

double parse_double(const std::string& text, const std::string& option) {
  size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || text.empty() || !std::isfinite(value))
    throw UsageError("option " + option + " expects a number, got '" + text + "'");
  return value;
}

}  // namespace

ArgParser::ArgParser(std::string command, std::string usage, std::string summary)
    : command_(std::move(command)), usage_(std::move(usage)), summary_(std::move(summary)) {}

void ArgParser::flag(std::string names, bool* out, std::string help) {
  options_.push_back(
      {split_names(names), "", std::move(help), [out](const std::string&) { *out = true; }});
}

void ArgParser::option(std::string names, std::string* out, std::string metavar, std::string help) {
  options_.push_back({split_names(names), std::move(metavar), std::move(help),
                      [out](const std::string& v) { *out = v; }});
}

void ArgParser::option(std::string names, std::optional<std::string>* out, std::string metavar,
                       std::string help) {
  options_.push_back({split_names(names), std::move(metavar), std::move(help),
                      [out](const std::string& v) { *out = v; }});
}

void ArgParser::option(std::string names, int64_t* out, std::string metavar, std::string help,
                       int64_t min_value, int64_t max_value) {
  auto list = split_names(names);
  const std::string shown = list.back();
  options_.push_back(
      {std::move(list), std::move(metavar), std::move(help), [=](const std::string& v) {
         const int64_t value = parse_int(v, shown);
         if (value < min_value || value > max_value)
           throw UsageError("option " + shown + " must be in [" + std::to_string(min_value) + ", " +
                            std::to_string(max_value) + "], got " + v);
         *out = value;
       }});
}

void ArgParser::option(std::string names, double* out, std::string metavar, std::string help) {
  auto list = split_names(names);
  const std::string shown = list.back();
  options_.push_back({std::move(list), std::move(metavar), std::move(help),
                      [=](const std::string& v) { *out = parse_double(v, shown); }});
}

void ArgParser::option_list(std::string names, std::vector<std::string>* out, std::string metavar,
                            std::string help) {
  options_.push_back({split_names(names), std::move(metavar), std::move(help),
                      [out](const std::string& v) { out->push_back(v); }});
}

void ArgParser::positional(std::string name, std::string* out, std::string help, bool required) {
  positionals_.push_back({std::move(name), std::move(help), required, out});
}

const ArgParser::Option* ArgParser::find(std::string_view name) const {
  for (const auto& opt : options_)
    for (const auto& n : opt.names)
      if (n == name) return &opt;
  return nullptr;
}

bool ArgParser::parse(const std::vector<std::string>& args) {
  size_t next_positional = 0;
  bool only_positionals = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (!only_positionals && (arg == "-h" || arg == "--help")) {
      std::cout << help_text();
      return false;
    }
    if (!only_positionals && arg == "--") {
      only_positionals = true;
      continue;
    }
    if (!only_positionals && arg.size() > 1 && arg[0] == '-') {
      std::string name = arg, value;
      bool inline_value = false;
      if (const auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
        name = arg.substr(0, eq);
        value = arg.substr(eq + 1);
        inline_value = true;
      }
      const Option* opt = find(name);
      if (!opt) throw UsageError("unknown option '" + name + "'");
      if (opt->metavar.empty()) {
        if (inline_value) throw UsageError("option " + name + " takes no value");
        opt->set("");
        continue;
      }
      if (!inline_value) {
        if (i + 1 >= args.size())
          throw UsageError("option " + name + " needs a value (" + opt->metavar + ")");
        value = args[++i];
      }
      opt->set(value);
      continue;
    }
    if (next_positional >= positionals_.size())
      throw UsageError("unexpected argument '" + arg + "'");
    *positionals_[next_positional++].out = arg;
  }
  for (size_t i = next_positional; i < positionals_.size(); ++i)
    if (positionals_[i].required) throw UsageError("missing argument " + positionals_[i].name);
  return true;
}

std::string ArgParser::help_text() const {
  std::ostringstream out;
  out << "usage: brise " << command_ << " " << usage_ << "\n\n" << summary_ << "\n";
  if (!positionals_.empty()) {
    out << "\narguments:\n";
    for (const auto& p : positionals_) out << "  " << p.name << "\n      " << p.help << "\n";
  }
  out << "\noptions:\n";
  for (const auto& opt : options_) {
    out << "  ";
    for (size_t i = 0; i < opt.names.size(); ++i) out << (i ? ", " : "") << opt.names[i];
    if (!opt.metavar.empty()) out << " " << opt.metavar;
    out << "\n      " << opt.help << "\n";
  }
  out << "  -h, --help\n      show this help\n";
  return out.str();
}

std::vector<int32_t> parse_id_list(std::string_view text, std::string_view option_name) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] == ' ' || text[i] == ',' || text[i] == '\t' || text[i] == '\n') {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < text.size() && text[j] != ' ' && text[j] != ',' && text[j] != '\t' &&
           text[j] != '\n')
      ++j;
    const std::string_view item = text.substr(i, j - i);
    int64_t value = 0;
    auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), value);
    if (ec != std::errc() || ptr != item.data() + item.size() || value < 0 || value > INT32_MAX)
      throw UsageError(std::string(option_name) + ": '" + std::string(item) +
                       "' is not a token id");
    ids.push_back(static_cast<int32_t>(value));
    i = j;
  }
  return ids;
}

TensorType parse_tensor_type(const std::string& text, std::string_view option) {
  const auto type = tensor_type_from_name(text);
  if (!type)
    throw UsageError(std::string(option) + " must be " + tensor_type_names() + ", got '" + text +
                     "'");
  return *type;
}

std::optional<uint32_t> parse_recorded_window(const std::string& text) {
  if (text == "none") return std::nullopt;
  const auto ids = parse_id_list(text, "--sliding-window");
  if (ids.size() != 1 || ids[0] <= 0)
    throw UsageError("--sliding-window must be a positive number or 'none'");
  return static_cast<uint32_t>(ids[0]);
}

}  // namespace brise::cli
