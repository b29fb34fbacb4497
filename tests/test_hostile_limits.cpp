// Limits are applied before allocation: files that claim more than they hold (tensors larger
// than the file, 2^40 elements, a 2^31-entry vocabulary, 4 GB metadata strings, arrays nested a
// million levels deep, JSON nested a million levels deep) are rejected with brise::Error while
// the heap grows by less than a small constant, and loading a real model uses heap memory bounded
// by the file's size plus a small constant (the weights stay memory-mapped).
//
// Heap use is measured exactly: this test program replaces the global operator new/delete with
// versions that count the bytes live and the largest single request while tracking is on.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <new>

#include "brise/error.hpp"
#include "brise/gguf.hpp"
#include "brise/model.hpp"
#include "brise/synth.hpp"
#include "engine/convert/checkpoint.hpp"
#include "engine/convert/safetensors.hpp"
#include "support/gguf_bytes.hpp"
#include "support/stories.hpp"
#include "support/testdata.hpp"

namespace {

std::atomic<bool> g_tracking{false};
std::atomic<int64_t> g_live{0}, g_peak{0}, g_largest{0};
constexpr size_t kHeader = 16;  // keeps the size, and malloc's 16-byte alignment

void* counted_new(std::size_t n) {
  void* p = std::malloc(n + kHeader);
  if (!p) throw std::bad_alloc();
  *static_cast<std::size_t*>(p) = n;
  if (g_tracking.load(std::memory_order_relaxed)) {
    const int64_t live = g_live.fetch_add(static_cast<int64_t>(n)) + static_cast<int64_t>(n);
    int64_t peak = g_peak.load();
    while (live > peak && !g_peak.compare_exchange_weak(peak, live)) {
    }
    int64_t largest = g_largest.load();
    while (static_cast<int64_t>(n) > largest &&
           !g_largest.compare_exchange_weak(largest, static_cast<int64_t>(n))) {
    }
  }
  return static_cast<char*>(p) + kHeader;
}

void counted_delete(void* p) noexcept {
  if (!p) return;
  char* base = static_cast<char*>(p) - kHeader;
  if (g_tracking.load(std::memory_order_relaxed))
    g_live.fetch_sub(static_cast<int64_t>(*reinterpret_cast<std::size_t*>(base)));
  std::free(base);
}

}  // namespace

// Every replaceable form that pairs with these deletes, the nothrow ones too (under a sanitizer
// runtime they do not forward to the plain form). The aligned forms are left alone: they have
// their own allocation functions and their own deletes.
void* operator new(std::size_t n) {
  return counted_new(n);
}
void* operator new[](std::size_t n) {
  return counted_new(n);
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return counted_new(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return counted_new(n);
  } catch (...) {
    return nullptr;
  }
}
void operator delete(void* p) noexcept {
  counted_delete(p);
}
void operator delete[](void* p) noexcept {
  counted_delete(p);
}
void operator delete(void* p, std::size_t) noexcept {
  counted_delete(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  counted_delete(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  counted_delete(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  counted_delete(p);
}

namespace brise {
namespace {

namespace fs = std::filesystem;
using test::append_str;
using test::append_u32;
using test::append_u64;
using test::Bytes;
using test::find_string;
using test::put_u32;
using test::put_u64;

struct HeapUse {
  int64_t peak = 0;     // most bytes live at once, above the level at the start
  int64_t largest = 0;  // largest single request
};

// Runs `fn` with allocation tracking on; returns the error message ("" if it succeeded).
std::string measured(const std::function<void()>& fn, HeapUse* use) {
  g_live = 0, g_peak = 0, g_largest = 0;
  g_tracking = true;
  std::string message;
  try {
    fn();
  } catch (const Error& e) {
    message = e.what();
  }
  g_tracking = false;
  use->peak = g_peak;
  use->largest = g_largest;
  return message;
}

constexpr int64_t kSmall = 1 << 20;          // what a rejected claim may allocate: 1 MB
constexpr int64_t kLoadConstant = 16 << 20;  // the constant of the load bound: 16 MB

// A small valid model (dim 32, 2 layers, vocab 260) to damage.
const Bytes& small_model() {
  static const Bytes bytes = [] {
    SynthSpec s;
    ModelConfig& c = s.config;
    c.dim = 32, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 8;
    c.hidden_dim = 64, c.vocab_size = 260, c.context_length = 64;
    s.type = TensorType::F32;
    const fs::path dir = test::scratch_dir("limits-small-" + std::to_string(::getpid()));
    write_synthetic_model(dir / "m.gguf", s);
    Bytes b = test::read_file_bytes(dir / "m.gguf");
    fs::remove_all(dir);
    return b;
  }();
  return bytes;
}

struct Claim {
  std::string name;
  std::function<Bytes()> make;
  std::string message;
  bool file_level = true;  // the GGUF parser itself rejects it (else Model::load does)
};

std::vector<Claim> claims() {
  const auto edit = [](const std::function<void(Bytes&)>& change) {
    Bytes b = small_model();
    change(b);
    return b;
  };
  const size_t name_len = 8 + std::string_view("token_embd.weight").size();
  return {
      {"tensor larger than the file",
       [=] {
         return edit([&](Bytes& b) {  // token_embd [32, 2^30] f32: 128 GB
           put_u64(b, find_string(b, "token_embd.weight") + name_len + 4 + 8, uint64_t{1} << 30);
         });
       },
       "runs past the end of the file"},
      {"tensor of 2^40 elements",
       [=] {
         return edit([&](Bytes& b) {
           const size_t dims = find_string(b, "token_embd.weight") + name_len + 4;
           put_u64(b, dims, uint64_t{1} << 20);
           put_u64(b, dims + 8, uint64_t{1} << 20);
         });
       },
       "runs past the end of the file"},
      {"vocabulary of 2^31 tokens",
       [=] {
         return edit([&](Bytes& b) {  // key, value type ARRAY, element type STRING, count
           put_u64(b, find_string(b, "tokenizer.ggml.tokens") + 8 + 21 + 4 + 4, uint64_t{1} << 31);
         });
       },
       "array of 2147483648 string items needs at least 17179869184 bytes"},
      {"metadata string of 4 GB",
       [=] {
         return edit([&](Bytes& b) { put_u64(b, find_string(b, "llama"), uint64_t{1} << 32); });
       },
       "4294967296"},
      {"vocab_size 2^31",
       [=] {
         return edit([&](Bytes& b) {
           put_u32(b, find_string(b, "llama.vocab_size") + 8 + 16 + 4, 1u << 31);
         });
       },
       "llama.vocab_size = 2147483648 is out of range", false},
      {"arrays nested 10^6 levels deep",
       [] {
         Bytes b;
         for (const char c : std::string_view("GGUF")) b.push_back(static_cast<std::byte>(c));
         append_u32(b, 3);
         append_u64(b, 0);  // tensors
         append_u64(b, 1);  // metadata
         append_str(b, "deep");
         append_u32(b, 9);
         for (int level = 0; level < 1000000; ++level) {
           append_u32(b, 9);  // element type: array
           append_u64(b, 1);  // one item
         }
         append_u32(b, 4);
         append_u64(b, 0);
         return b;
       },
       "arrays nested deeper than 4 levels"},
  };
}

TEST(HostileLimits, ClaimsAreRejectedBeforeAnythingIsAllocated) {
  const fs::path dir = test::scratch_dir("limits-claims");
  for (const auto& c : claims()) {
    SCOPED_TRACE(c.name);
    const fs::path path = dir / "claim.gguf";
    const Bytes bytes = c.make();
    test::write_file_bytes(path, bytes);
    HeapUse use;
    const std::string msg = measured([&] { Model::load(path); }, &use);
    EXPECT_NE(msg.find(c.message), std::string::npos) << "message: " << msg;
    EXPECT_LT(use.peak, kSmall) << "heap grew by " << use.peak << " bytes";
    EXPECT_LT(use.largest, kSmall) << "largest allocation " << use.largest << " bytes";
    // The same through the in-memory parser.
    const std::string msg2 = measured([&] { gguf::File::parse(bytes, "m"); }, &use);
    EXPECT_EQ(msg2.empty(), !c.file_level) << msg2;
    EXPECT_LT(use.peak, kSmall);
  }
}

TEST(HostileLimits, JsonDepthIsLimitedBeforeParsing) {
  const fs::path dir = test::scratch_dir("limits-json");
  const std::string deep = std::string(1000000, '[') + std::string(1000000, ']');
  for (const char* name : {"config.json", "params.json"}) {
    SCOPED_TRACE(name);
    fs::remove_all(dir);
    fs::create_directories(dir);
    std::ofstream(dir / name) << deep;
    HeapUse use;
    const std::string msg = measured(
        [&] {
          CheckpointLayout layout;
          bool tied;
          read_checkpoint_config(dir, &layout, &tied);
        },
        &use);
    EXPECT_NE(msg.find("invalid JSON: nesting deeper than 64"), std::string::npos) << msg;
    // The text itself (2 MB) is read into memory; nothing beyond it.
    EXPECT_LT(use.peak, int64_t(deep.size()) + kSmall);
  }
  // 64 levels are fine (the limit), 65 are not.
  const std::string ok = "{\"a\":" + std::string(63, '[') + std::string(63, ']') + "}";
  EXPECT_NO_THROW(parse_shard_index("{\"weight_map\": {\"t\": \"f\"}, \"x\": " +
                                        std::string(62, '[') + std::string(62, ']') + "}",
                                    "index"));
  EXPECT_THROW(parse_shard_index("{\"weight_map\": {\"t\": \"f\"}, \"x\": " + std::string(64, '[') +
                                     std::string(64, ']') + "}",
                                 "index"),
               Error);
  (void)ok;

  // A safetensors header nested a million levels deep.
  Bytes st(8);
  put_u64(st, 0, deep.size());
  for (const char c : deep) st.push_back(static_cast<std::byte>(c));
  HeapUse use;
  const std::string msg = measured([&] { SafetensorsFile::parse(st, "deep.safetensors"); }, &use);
  EXPECT_NE(msg.find("nesting deeper than 64"), std::string::npos) << msg;
  EXPECT_LT(use.peak, kSmall);
}

TEST(HostileLimits, SafetensorsClaimsAreRejectedBeforeAllocation) {
  const auto header = [](const std::string& json) {
    std::string text = json;
    while (text.size() % 8) text += ' ';
    Bytes b(8);
    put_u64(b, 0, text.size());
    for (const char c : text) b.push_back(static_cast<std::byte>(c));
    return b;
  };
  const std::pair<Bytes, std::string> cases[] = {
      {header(
           R"({"t":{"dtype":"F32","shape":[1048576,1048576],"data_offsets":[0,4398046511104]}})"),
       "run past the end of the data"},
      {header(R"({"t":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})"),
       "shape overflows"},
      {[] {
         Bytes b(8);
         put_u64(b, 0, uint64_t{1} << 32);  // a 4 GB header in a tiny file
         return b;
       }(),
       "header length 4294967296 runs past the end of the file"},
  };
  for (const auto& c : cases) {
    const Bytes& bytes = c.first;  // not a structured binding: clang 14 cannot capture one
    const std::string& message = c.second;
    HeapUse use;
    const std::string msg = measured([&] { SafetensorsFile::parse(bytes, "t.safetensors"); }, &use);
    EXPECT_NE(msg.find(message), std::string::npos) << msg;
    EXPECT_LT(use.peak, kSmall);
  }
}

// Loading keeps the weights mapped, so the heap holds the metadata (hyperparameters, vocabulary)
// and the tokenizer's tables only: less than the file's size plus a small constant.
TEST(HostileLimits, LoadingUsesHeapBoundedByTheFileSize) {
  const fs::path dir = test::scratch_dir("limits-load");
  struct Model_ {
    const char* name;
    uint32_t vocab, dim;
    TensorType type;
  };
  for (const auto& m : {Model_{"vocab 32000 q8_0", 32000, 64, TensorType::Q8_0},
                        Model_{"vocab 260 f32", 260, 256, TensorType::F32}}) {
    SCOPED_TRACE(m.name);
    SynthSpec s;
    ModelConfig& c = s.config;
    c.dim = m.dim, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = m.dim / 4;
    c.hidden_dim = 2 * m.dim, c.vocab_size = m.vocab, c.context_length = 64;
    s.type = m.type;
    write_synthetic_model(dir / "m.gguf", s);
    const auto size = static_cast<int64_t>(fs::file_size(dir / "m.gguf"));
    HeapUse use;
    std::shared_ptr<const Model> model;
    const std::string msg = measured([&] { model = Model::load(dir / "m.gguf"); }, &use);
    ASSERT_EQ(msg, "");
    EXPECT_LT(use.peak, size + kLoadConstant) << "file " << size << " bytes";
    std::printf("  %s: file %lld bytes, heap during load %lld bytes\n", m.name,
                static_cast<long long>(size), static_cast<long long>(use.peak));
  }
}

// Metadata arrays are decoded into one gguf::Value (40 bytes) per item, so a file that is all
// metadata expands: a u8 array of N items (N bytes in the file) takes 40 N bytes of heap. The
// reader's budget on array items in all (ReadLimits::max_total_array_items, 2^22) bounds that:
// heap <= file size + 40 x 2^22 bytes + a small constant, and a file whose arrays hold more
// items in all is rejected before the array that crosses the budget is allocated.
TEST(HostileLimits, MetadataExpansionIsBoundedByTheItemBudget) {
  const fs::path dir = test::scratch_dir("limits-expansion");
  const gguf::ReadLimits limits;
  const int64_t budget_bytes =
      static_cast<int64_t>(limits.max_total_array_items * sizeof(gguf::Value));
  // A file of `arrays` u8 arrays of `items` items each.
  const auto file_of = [&](uint64_t arrays, uint64_t items) {
    Bytes b;
    for (const char c : std::string_view("GGUF")) b.push_back(static_cast<std::byte>(c));
    append_u32(b, 3);
    append_u64(b, 0);
    append_u64(b, arrays);
    for (uint64_t a = 0; a < arrays; ++a) {
      append_str(b, "big." + std::to_string(a));
      append_u32(b, 9);
      append_u32(b, 0);
      append_u64(b, items);
      b.insert(b.end(), items, std::byte{1});
    }
    b.resize((b.size() + 31) / 32 * 32);  // the (empty) data section starts aligned
    return b;
  };
  {
    SCOPED_TRACE("2^20 u8 items: accepted, heap bounded");
    const Bytes b = file_of(1, 1u << 20);
    test::write_file_bytes(dir / "m.gguf", b);
    HeapUse use;
    const std::string msg = measured([&] { gguf::File::open(dir / "m.gguf"); }, &use);
    EXPECT_EQ(msg, "");
    std::printf("  array of 2^20 u8: file %zu bytes, heap %lld bytes (%.1fx)\n", b.size(),
                static_cast<long long>(use.peak), double(use.peak) / double(b.size()));
    EXPECT_LT(use.peak, static_cast<int64_t>(b.size()) + budget_bytes + kSmall);
  }
  {
    SCOPED_TRACE("5 x 2^20 u8 items: over the budget of 2^22, rejected");
    const Bytes b = file_of(5, 1u << 20);
    test::write_file_bytes(dir / "m.gguf", b);
    HeapUse use;
    const std::string msg = measured([&] { gguf::File::open(dir / "m.gguf"); }, &use);
    EXPECT_NE(msg.find("metadata arrays hold more than 4194304 items in all"), std::string::npos)
        << msg;
    EXPECT_NE(msg.find("m.gguf"), std::string::npos) << msg;
    EXPECT_LT(use.peak, static_cast<int64_t>(b.size()) + budget_bytes + kSmall);
  }
}

}  // namespace
}  // namespace brise
