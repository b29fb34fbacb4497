// npm tiktoken (the WASM build of tiktoken's Rust core, tests/node's pinned 1.0.22) on the text
// and vocabulary of bench_tokenizer's Encode/tekken-mini/mixed-1MiB, for the comparison of
// encode throughput: one thread (tiktoken's encode is single-threaded, and so is brise's).
//
//   node bench/bench_tiktoken.mjs [ROUNDS]      (needs tests/node/node_modules: npm ci there)
// The data folder is $BRISE_TESTDATA, else ../shared beside the source tree. Prints MB/s of input
// text per round and the median; checks that the ids agree with the reference's first case.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "../tests/node/package.json"));
const { Tiktoken } = require("tiktoken/lite");
const data = process.env.BRISE_TESTDATA || path.resolve(here, "../../shared");
const rounds = Number(process.argv[2] || 10);

// The same text as bench_tokenizer.cpp's tekken_text().
const read = (p) => fs.readFileSync(path.join(data, p));
const ref = JSON.parse(read("reference/tekken-mini/encode.json"));
const unit = Buffer.concat([
  read("corpus/mistral-news-fr.txt"), Buffer.from("\n"),
  read("reference/tiny256/val-stories.txt"), Buffer.from("\n"),
  ...ref.cases.map((c) => Buffer.from(c.text + "\n", "utf8")),
]);
const parts = [];
let size = 0;
while (size < 1 << 20) {
  parts.push(unit);
  size += unit.length;
}
const text = Buffer.concat(parts).toString("utf8");

const tekken = JSON.parse(read("models/tekken-mini/tekken.json"));
const cfg = tekken.config;
const ranks = cfg.default_vocab_size - cfg.default_num_special_tokens;
const encoder = new Tiktoken(
  tekken.vocab.slice(0, ranks).map((v) => `${v.token_bytes} ${v.rank}`).join("\n"), {}, cfg.pattern);
const first = Array.from(encoder.encode(ref.cases[4].text), (r) => r + cfg.default_num_special_tokens);
if (JSON.stringify(first) !== JSON.stringify(ref.cases[4].ids)) throw new Error("ids disagree");

const speeds = [];
let tokens = 0;
for (let i = 0; i < rounds; i++) {
  const t0 = process.hrtime.bigint();
  tokens = encoder.encode(text).length;
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  speeds.push(size / 1e6 / seconds);
}
speeds.sort((a, b) => a - b);
console.log(`npm tiktoken encode, ${size} bytes, ${tokens} tokens: median ${speeds[rounds >> 1].toFixed(2)} MB/s ` +
  `(rounds: ${speeds.map((s) => s.toFixed(2)).join(" ")})`);
