// Differential test of brise's Tekken tokenizer against tiktoken itself: npm `tiktoken` (the WASM
// build of tiktoken's Rust core, the oracle of ../shared/reference/tekken-mini/encode.json) and
// brise encode thousands of random texts with the tekken-mini vocabulary, and every id must agree.
// The texts mix many scripts, every kind of white space (U+0085, U+FEFF, U+00A0, U+2028, ...),
// digits of all kinds, combining marks, emoji, punctuation and random code points (assigned or
// not, which also catches a Unicode version that differs from tiktoken's).
//
//   node tekken_oracle.test.mjs        (ctest: node:tekken_oracle)
// Environment: BRISE_ENCODE_JSONL, the test helper brise_encode_jsonl (tests/tools); the data
// folder is $BRISE_TESTDATA, else ../shared beside the checkout (missing: skip, exit 77, unless
// BRISE_TESTDATA names it). TEKKEN_ORACLE_TEXTS sets the number of random texts (default 4000),
// TEKKEN_ORACLE_SEED the seed (default 1); BRISE_UNICODE_DATA the folder of Debian's unicode-data
// (default /usr/share/unicode).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Tiktoken } from "tiktoken/lite";

const here = path.dirname(fileURLToPath(import.meta.url));
const data = process.env.BRISE_TESTDATA || path.resolve(here, "../../../shared");
const vocabPath = path.join(data, "models/tekken-mini/tekken.json");
if (!fs.existsSync(vocabPath)) {
  console.error(`no ${vocabPath}`);
  process.exit(process.env.BRISE_TESTDATA ? 1 : 77);
}
const helper = process.env.BRISE_ENCODE_JSONL;
if (!helper) {
  console.error("BRISE_ENCODE_JSONL must name the brise_encode_jsonl helper");
  process.exit(1);
}

// mulberry32: a small seeded generator, so that a failure can be replayed.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const range = (lo, hi) => Array.from({ length: hi - lo + 1 }, (_, i) => String.fromCodePoint(lo + i));
const chars = (s) => Array.from(s);

// Pools of characters by kind; a text is a run of "words" drawn from them.
const pools = {
  latin: chars("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"),
  accented: chars("éèêëàâäôöùûüçñÉÈÊÀÇÑßæœÆŒøØåÅłŁžŽšŠčČğĞışŞ"),
  titlecase: chars("ǅǈǋǲᾈᾉᾏᾼῌῼ"), // Lt
  modifier: chars("ʰʲʷˠˤˆˇˈˌːᴬᴮᵃᵇᵢⁱⁿ々ー〻ꜝ"), // Lm
  otherLetter: chars("ªºƻǀǁǂǃʔאבגדהוזחטיכלמנסעפצקרשת"), // Lo
  greek: range(0x3b1, 0x3c9).concat(range(0x391, 0x3a9).filter((c) => c !== "\u03a2")),
  cyrillic: range(0x430, 0x44f).concat(range(0x410, 0x42f)),
  arabic: range(0x627, 0x64a),
  arabicMarks: range(0x64b, 0x652),
  hebrewPoints: range(0x5b0, 0x5bc),
  devanagari: range(0x905, 0x939),
  devanagariMarks: range(0x93e, 0x94d).concat(["\u0901", "\u0902", "\u0903"]),
  thai: range(0xe01, 0xe2e),
  thaiMarks: chars("\u0e31\u0e34\u0e35\u0e36\u0e37\u0e38\u0e39\u0e47\u0e48\u0e49\u0e4a\u0e4b"),
  cjk: chars("我们在巴黎发布了一个新的开源语言模型東京日本首都語"),
  kana: range(0x3041, 0x3096).concat(range(0x30a1, 0x30fa)),
  hangul: chars("안녕하세요세계서울은수도입니다한국어"),
  combining: range(0x300, 0x36f).concat(["\u20dd", "\u20de", "\u0488", "\u1ab0", "\ufe20"]),
  digits: chars("0123456789"),
  otherDigits: chars("٠١٢٣٤٥٦٧٨٩۰۱۲०१२३४५६७८९๐๑๒０１２３４５６７８９²³¹⁰⁴⁵⁶₀₁₂½¼¾⅓ⅠⅡⅢⅣⅫⅻ①②③⑩㉑〇"),
  space: [" "],
  whiteSpace: chars("\t\n\u000b\f\r \u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"),
  notWhiteSpace: chars("\ufeff\u200b\u200c\u200d\u180e\u2060\u00ad"),
  newlines: ["\n", "\r", "\r\n", "\n\n", "\r\n\r\n"],
  punctuation: chars("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~«»—–…‘’“”¿¡。、・「」『』【】《》〈〉؟،·•§¶†‡※‰′″"),
  slashes: chars("/\\/"),
  emoji: chars("😀😃😄😁🍕🐱🎉🚀❤👍🏽🏿🇫🇷🇩🇪👨👩👧👦").concat(["\u200d", "\ufe0f", "\u20e3"]),
  symbols: chars("∑∞√≈≤≥±×÷€£¥©®™°µ∂∆∏∫≠≡⊂⊃⊕♠♣♥♦★☆☀☂☃"),
  control: chars("\u0000\u0001\u0007\u001b\u007f\u0080\u009f"),
};
const poolNames = Object.keys(pools);

// brise's character classes are Unicode 15.0.0 (Debian 12's unicode-data); npm tiktoken 1.0.22's
// regex crate has Unicode 16.0. They differ only on the code points assigned after 15.0 (CJK
// Extension I, Egyptian Hieroglyphs Extended-A, Garay, Gurung Khema, ... : unassigned for brise,
// letters or digits for tiktoken), which the random code points leave out: a code point is drawn
// when Unicode 15.0 assigns it (DerivedAge.txt of the same package) or when this node's own
// Unicode (17.0 or later) still leaves it unassigned, so unassigned code points are tested too.
const ucd = process.env.BRISE_UNICODE_DATA || "/usr/share/unicode";
const assigned15 = [];
{
  const agePath = path.join(ucd, "DerivedAge.txt");
  if (!fs.existsSync(agePath)) {
    console.error(`no ${agePath}: apt-get install unicode-data (tools/install-deps.sh)`);
    process.exit(1);
  }
  const text = fs.readFileSync(agePath, "utf8");
  assert.match(text.split("\n", 1)[0], /DerivedAge-15\.0\.0/, "expected Unicode 15.0.0's DerivedAge");
  for (const line of text.split("\n")) {
    const m = /^([0-9A-F]+)(?:\.\.([0-9A-F]+))?\s*;/.exec(line);
    if (m) assigned15.push([parseInt(m[1], 16), parseInt(m[2] || m[1], 16)]);
  }
}
const isAssigned15 = (cp) => assigned15.some(([lo, hi]) => cp >= lo && cp <= hi);
const unassignedHere = /^\p{Cn}$/u;

// A random code point anywhere below U+30000 or in plane 14, surrogates excluded: unassigned ones
// too, and letters/marks/digits of scripts not in the pools.
let leftOut = 0;
function randomCodePoint(r) {
  for (;;) {
    const cp = r() < 0.05 ? 0xe0000 + Math.floor(r() * 0x200) : Math.floor(r() * 0x30000);
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    const c = String.fromCodePoint(cp);
    if (!isAssigned15(cp) && !unassignedHere.test(c)) {
      ++leftOut;  // assigned after Unicode 15.0: see above
      continue;
    }
    return c;
  }
}

function randomText(r) {
  let text = "";
  const words = 1 + Math.floor(r() * 12);
  for (let w = 0; w < words; w++) {
    const kind = r();
    if (kind < 0.08) {
      text += randomCodePoint(r);
      continue;
    }
    // A word: a run from one pool, sometimes mixed with a second (marks after letters, ...).
    const a = pools[poolNames[Math.floor(r() * poolNames.length)]];
    const b = pools[poolNames[Math.floor(r() * poolNames.length)]];
    const n = 1 + Math.floor(r() * (r() < 0.1 ? 40 : 6));
    for (let i = 0; i < n; i++) {
      const pool = r() < 0.75 ? a : b;
      text += pool[Math.floor(r() * pool.length)];
    }
  }
  return text;
}

const tekken = JSON.parse(fs.readFileSync(vocabPath, "utf8"));
const cfg = tekken.config;
const ranks = cfg.default_vocab_size - cfg.default_num_special_tokens;
const encoder = new Tiktoken(
  tekken.vocab.slice(0, ranks).map((v) => `${v.token_bytes} ${v.rank}`).join("\n"),
  {},
  cfg.pattern,
);
const specials = cfg.default_num_special_tokens;

function briseEncode(texts) {
  const run = spawnSync(helper, [vocabPath], {
    input: texts.map((t) => JSON.stringify(t)).join("\n") + "\n",
    maxBuffer: 1 << 30,
    encoding: "utf8",
  });
  assert.equal(run.status, 0, `brise_encode_jsonl failed: ${run.stderr}`);
  const lines = run.stdout.split("\n").filter((l) => l.length > 0);
  assert.equal(lines.length, texts.length);
  return lines.map((l) => JSON.parse(l));
}

function compare(texts, label) {
  const mine = briseEncode(texts);
  let differing = 0;
  for (let i = 0; i < texts.length; i++) {
    const expected = Array.from(encoder.encode(texts[i]), (rank) => rank + specials);
    if (JSON.stringify(mine[i]) !== JSON.stringify(expected)) {
      if (differing++ < 5) {
        const cps = Array.from(texts[i], (c) => "U+" + c.codePointAt(0).toString(16).toUpperCase());
        console.error(`${label} ${i}: ${JSON.stringify(texts[i])} (${cps.join(" ")})\n` +
          `  tiktoken ${JSON.stringify(expected)}\n  brise    ${JSON.stringify(mine[i])}`);
      }
    }
  }
  assert.equal(differing, 0, `${differing} of ${texts.length} ${label} texts differ`);
}

test("random texts of many scripts, spaces, digits, marks and emoji", () => {
  const r = rng(Number(process.env.TEKKEN_ORACLE_SEED || 1));
  const count = Number(process.env.TEKKEN_ORACLE_TEXTS || 4000);
  const texts = [];
  for (let i = 0; i < count; i++) texts.push(randomText(r));
  compare(texts, "random");
  console.log(`# ${leftOut} code points assigned after Unicode 15.0 were left out`);
});

test("every white-space and digit character next to letters, spaces and newlines", () => {
  const texts = [];
  const neighbours = ["a", "A", " ", "  ", "\n", "1", ".", "\u0301", ""];
  for (const c of [...pools.whiteSpace, ...pools.notWhiteSpace, ...pools.otherDigits]) {
    for (const before of neighbours)
      for (const after of neighbours) texts.push(`${before}${c}${after}`, `x ${before}${c}${after}y`);
  }
  compare(texts, "white space and digits");
});

test("slices of the reference texts", () => {
  const ref = JSON.parse(fs.readFileSync(path.join(data, "reference/tekken-mini/encode.json"), "utf8"));
  const r = rng(7);
  const texts = [];
  for (const c of ref.cases) {
    const cps = Array.from(c.text);
    texts.push(c.text);
    for (let k = 0; k < 20 && cps.length > 1; k++) {
      const a = Math.floor(r() * cps.length);
      const b = a + 1 + Math.floor(r() * (cps.length - a));
      texts.push(cps.slice(a, b).join(""));
    }
  }
  compare(texts, "slices");
});
