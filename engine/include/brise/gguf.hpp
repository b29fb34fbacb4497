// GGUF version 3: a memory-mapped reader with zero-copy tensor views, and a streaming writer.
// Layout and type ids follow the GGUF specification (ggml/docs/gguf.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "brise/tensor_type.hpp"

namespace brise::gguf {

inline constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian uint32
inline constexpr uint32_t kVersion = 3;
inline constexpr uint32_t kDefaultAlignment = 32;

enum class ValueType : uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};
std::string_view value_type_name(ValueType type);

struct Value;

// A GGUF array: every element has the same type. Arrays of arrays are allowed by the format.
struct Array {
  ValueType elem_type = ValueType::U8;
  std::vector<Value> items;
};

struct Value {
  std::variant<uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t, float, bool, std::string,
               Array, uint64_t, int64_t, double>
      data;

  Value() = default;
  template <typename T>
  Value(T v) : data(std::move(v)) {}  // NOLINT: implicit by design, so set("k", 3u) reads well
  Value(const char* s) : data(std::string(s)) {}

  ValueType type() const;
  // Typed accessors; each throws brise::Error naming `what` (usually the key) on a type mismatch.
  // as_uint/as_int accept any integer type whose value fits.
  uint64_t as_uint(std::string_view what) const;
  int64_t as_int(std::string_view what) const;
  double as_float(std::string_view what) const;  // F32 or F64
  bool as_bool(std::string_view what) const;
  const std::string& as_string(std::string_view what) const;
  const Array& as_array(std::string_view what) const;
};

// Convenience constructors for typed arrays.
Array make_array(const std::vector<std::string>& items);
Array make_array(const std::vector<float>& items);
Array make_array(const std::vector<int32_t>& items);
Array make_array(const std::vector<bool>& items);

struct TensorInfo {
  std::string name;
  std::vector<uint64_t> dims;  // GGUF order: dims[0] varies fastest (row length)
  TensorType type = TensorType::F32;
  uint64_t offset = 0;  // relative to the start of the data section
  uint64_t n_elements = 0;
  uint64_t n_bytes = 0;
  const std::byte* data = nullptr;  // points into the mapping (reader only)

  uint64_t row_length() const { return dims.empty() ? 1 : dims[0]; }
  uint64_t n_rows() const { return dims.empty() ? 1 : n_elements / dims[0]; }
};

// Limits applied while parsing, before anything is allocated.
struct ReadLimits {
  uint64_t max_string_bytes = 1u << 20;  // one metadata string
  uint64_t max_array_items = 1u << 24;   // one metadata array
  // All array items of the file together. Each decoded item takes sizeof(Value) (40) bytes of
  // heap, however few bytes it has in the file (a u8 item has one), so this budget bounds the
  // heap a file of metadata can claim: the file's size plus 40 x 2^22 = 160 MiB at most. Real
  // models need well under 2^21 (a 128k vocabulary and 280k merges are ~0.7 million).
  uint64_t max_total_array_items = 1u << 22;
  uint32_t max_array_depth = 4;  // nested arrays
  uint64_t max_tensors = 1u << 16;
  uint64_t max_metadata = 1u << 16;
  uint32_t max_dims = 4;
  // For inspection tools (brise info): accept tensors of ggml types that brise cannot compute
  // with (q4_K, iq2_xs, ...) when their block layout is known; TensorInfo::type then holds the raw
  // ggml id (name it with ggml_type_name). Off by default: such files are errors for the engine.
  bool accept_foreign_tensor_types = false;
};

// A GGUF file opened read-only and memory-mapped. Every count, length, dimension, offset and size
// is validated against the real file size with overflow-safe arithmetic; a bad file raises
// brise::Error whose message names the file, the field and the problem. Immutable after open,
// so one instance may be shared by any number of threads.
class File {
 public:
  static std::shared_ptr<const File> open(const std::filesystem::path& path,
                                          const ReadLimits& limits = {});
  // Parses an in-memory image (used by fuzzers and tests); `bytes` must outlive the File.
  static std::shared_ptr<const File> parse(std::span<const std::byte> bytes, std::string name,
                                           const ReadLimits& limits = {});
  ~File();
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  const std::string& name() const { return name_; }  // the path, for messages
  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t file_size() const { return bytes_.size(); }
  uint64_t data_offset() const { return data_offset_; }

  // Metadata in file order.
  const std::vector<std::pair<std::string, Value>>& metadata() const { return metadata_; }
  const Value* find(std::string_view key) const;
  // Throws brise::Error "<file>: missing metadata key '<key>'" when absent.
  const Value& get(std::string_view key) const;
  uint64_t get_uint(std::string_view key) const;
  std::optional<uint64_t> get_uint_or(std::string_view key) const;
  double get_float(std::string_view key) const;
  std::string get_string(std::string_view key) const;
  bool get_bool_or(std::string_view key, bool fallback) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  // Lets the pages of a tensor that will not be read again leave the process's resident memory
  // (a file opened with open(); nothing for parse()). Reading it later maps it in again.
  void release(const TensorInfo& tensor) const;
  const TensorInfo* find_tensor(std::string_view name) const;
  // Throws brise::Error "<file>: missing tensor '<name>'" when absent.
  const TensorInfo& tensor(std::string_view name) const;

 private:
  File() = default;
  struct Mapping;
  std::unique_ptr<Mapping> mapping_;
  std::span<const std::byte> bytes_;
  std::string name_;
  uint32_t version_ = 0;
  uint32_t alignment_ = kDefaultAlignment;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, Value>> metadata_;
  std::vector<TensorInfo> tensors_;
  friend class Parser;
};

// Builds a GGUF file without holding tensor data in memory: declare metadata and tensors, write
// the header, then stream each tensor's bytes in declaration order.
class Writer {
 public:
  explicit Writer(uint32_t alignment = kDefaultAlignment);

  // Keys keep their first-set position; setting a key again replaces its value.
  void set(std::string key, Value value);
  // Declares the next tensor. dims in GGUF order (dims[0] = row length).
  void add_tensor(std::string name, std::vector<uint64_t> dims, TensorType type);

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  // Header + metadata + tensor infos + padding up to the data section.
  std::vector<std::byte> header_bytes() const;
  // Total size of the finished file.
  uint64_t file_size() const;

 private:
  uint32_t alignment_;
  std::vector<std::pair<std::string, Value>> metadata_;
  std::vector<TensorInfo> tensors_;
  uint64_t data_bytes_ = 0;
};

// Zero bytes to write after a tensor of `n_bytes` so that the next one stays aligned.
uint64_t padding_after(uint64_t n_bytes, uint32_t alignment);

// ggml's name for any tensor type id ("f32", "q4_K", "iq2_xs", ...), or "unknown".
std::string_view ggml_type_name(uint32_t ggml_type_id);

}  // namespace brise::gguf
