// brise_encode_jsonl VOCAB: encodes many texts in one process, for differential tests written in
// other languages (tests/node/tekken_oracle.test.mjs). Each line of stdin is one JSON string;
// each line of stdout is the JSON array of its ids (no BOS), or {"error": "..."} when brise
// refuses it. VOCAB is anything load_vocabulary reads (tekken.json, tokenizer.model, GGUF).
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "brise/error.hpp"
#include "brise/tokenizer.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: " << argv[0] << " VOCAB < texts.jsonl > ids.jsonl\n";
    return 2;
  }
  try {
    const brise::Tokenizer tokenizer(brise::load_vocabulary(argv[1]));
    std::string line;
    while (std::getline(std::cin, line)) {
      nlohmann::json out;
      try {
        out = tokenizer.encode(nlohmann::json::parse(line).get<std::string>());
      } catch (const brise::Error& e) {
        out = {{"error", e.what()}};
      }
      std::cout << out.dump() << '\n';
    }
  } catch (const std::exception& e) {
    std::cerr << argv[0] << ": " << e.what() << "\n";
    return 1;
  }
  return std::cout.good() ? 0 : 1;
}
