// GGUF version 3 writer: serialises the header, metadata and tensor infos; the caller streams the
// tensor data (each tensor followed by padding_after(n_bytes) zero bytes).
#include <bit>
#include <cstring>
#include <limits>
#include <string>

#include "brise/error.hpp"
#include "brise/gguf.hpp"
#include "engine/gguf/format.hpp"

namespace brise::gguf {
namespace {

[[noreturn]] void fail(const std::string& field, const std::string& problem) {
  throw Error("gguf writer: " + field + ": " + problem);
}

// Appends to a byte vector, or only counts when there is none (for file_size()).
class Sink {
 public:
  explicit Sink(std::vector<std::byte>* out) : out_(out) {}

  void raw(const void* p, size_t n) {
    size_ += n;
    if (!out_ || n == 0) return;
    const auto* b = static_cast<const std::byte*>(p);
    out_->insert(out_->end(), b, b + n);
  }
  template <typename T>
  void le(T v) {
    static_assert(std::endian::native == std::endian::little);
    raw(&v, sizeof(T));
  }
  void str(std::string_view s) {
    le<uint64_t>(s.size());
    raw(s.data(), s.size());
  }
  void zeros(uint64_t n) {
    size_ += n;
    if (out_) out_->insert(out_->end(), n, std::byte{0});
  }
  uint64_t size() const { return size_; }

 private:
  std::vector<std::byte>* out_;
  uint64_t size_ = 0;
};

void write_array_body(Sink& s, const Array& a);

// A value without its type tag (the tag is written by the caller: per pair, or once per array).
void write_value(Sink& s, const Value& v) {
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string>) {
          s.str(x);
        } else if constexpr (std::is_same_v<T, Array>) {
          write_array_body(s, x);
        } else if constexpr (std::is_same_v<T, bool>) {
          s.le<uint8_t>(x ? 1 : 0);
        } else {
          s.le<T>(x);
        }
      },
      v.data);
}

void write_array_body(Sink& s, const Array& a) {
  s.le<uint32_t>(static_cast<uint32_t>(a.elem_type));
  s.le<uint64_t>(a.items.size());
  for (const Value& item : a.items) write_value(s, item);
}

// Arrays must be homogeneous and no deeper than a reader with default limits accepts.
void validate_value(const Value& v, const std::string& field, uint32_t depth) {
  const Array* a = std::get_if<Array>(&v.data);
  if (!a) return;
  const ReadLimits defaults;
  if (depth + 1 > defaults.max_array_depth)
    fail(field, "arrays nested deeper than " + std::to_string(defaults.max_array_depth) +
                    " levels, which readers reject");
  if (!is_valid_value_type(static_cast<uint32_t>(a->elem_type)))
    fail(field,
         "invalid array element type " + std::to_string(static_cast<uint32_t>(a->elem_type)));
  for (size_t i = 0; i < a->items.size(); ++i) {
    const Value& item = a->items[i];
    const std::string item_field = field + "[" + std::to_string(i) + "]";
    if (item.type() != a->elem_type)
      fail(item_field, "item of type " + std::string(value_type_name(item.type())) +
                           " in an array of " + std::string(value_type_name(a->elem_type)));
    validate_value(item, item_field, depth + 1);
  }
}

uint64_t align_up(uint64_t n, uint32_t alignment) {
  const uint64_t a = alignment;
  if (n > std::numeric_limits<uint64_t>::max() - (a - 1)) fail("data section", "size overflows");
  return (n + a - 1) / a * a;
}

}  // namespace

uint64_t padding_after(uint64_t n_bytes, uint32_t alignment) {
  if (alignment == 0) return 0;
  const uint64_t rem = n_bytes % alignment;
  return rem == 0 ? 0 : alignment - rem;
}

Writer::Writer(uint32_t alignment) : alignment_(alignment) {
  // The specification requires a multiple of 8; readers (brise and llama.cpp) a power of two.
  if (!std::has_single_bit(alignment) || alignment < 8 || alignment > kMaxAlignment)
    fail("alignment", std::to_string(alignment) + " is not a power of two between 8 and " +
                          std::to_string(kMaxAlignment));
  // Readers assume 32 unless general.alignment says otherwise.
  if (alignment != kDefaultAlignment)
    metadata_.emplace_back(std::string(kAlignmentKey), Value(uint32_t{alignment}));
}

void Writer::set(std::string key, Value value) {
  const std::string field = "metadata '" + key + "'";
  if (key.size() > kMaxKeyBytes)
    fail(field.substr(0, 80) + "...'",
         "key of " + std::to_string(key.size()) + " bytes exceeds the GGUF limit of 65535");
  if (key == kAlignmentKey) {
    const auto* a = std::get_if<uint32_t>(&value.data);
    if (!a || *a != alignment_)
      fail(field, "must be the u32 " + std::to_string(alignment_) +
                      " given to the Writer (the alignment its offsets use)");
  }
  validate_value(value, field, 0);
  for (auto& [k, v] : metadata_) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  metadata_.emplace_back(std::move(key), std::move(value));
}

void Writer::add_tensor(std::string name, std::vector<uint64_t> dims, TensorType type) {
  const std::string field = "tensor '" + name + "'";
  if (name.size() > kMaxTensorNameBytes)
    fail(field, "name of " + std::to_string(name.size()) + " bytes is longer than " +
                    std::to_string(kMaxTensorNameBytes));
  for (const auto& t : tensors_)
    if (t.name == name) fail(field, "duplicate tensor name");
  const ReadLimits defaults;
  if (dims.empty() || dims.size() > defaults.max_dims)
    fail(field, std::to_string(dims.size()) + " dimensions (GGUF tensors here have 1.." +
                    std::to_string(defaults.max_dims) + ")");
  const auto& info = tensor_type_info(type);
  if (info.block_bytes == 0)
    fail(field, "unsupported tensor type id " + std::to_string(static_cast<uint32_t>(type)));
  uint64_t n_elements = 1;
  for (size_t d = 0; d < dims.size(); ++d) {
    if (dims[d] == 0) fail(field, "dimension " + std::to_string(d) + " is 0");
    const auto p = checked_mul(n_elements, dims[d]);
    if (!p || *p > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail(field, "element count overflows int64");
    n_elements = *p;
  }
  const auto row_bytes = tensor_row_bytes(type, dims[0]);
  if (!row_bytes)
    fail(field, "row length " + std::to_string(dims[0]) + " is not a multiple of the " +
                    std::string(info.name) + " block size " + std::to_string(info.block_elems));
  const auto n_bytes = checked_mul(*row_bytes, n_elements / dims[0]);
  if (!n_bytes) fail(field, "byte size overflows");

  TensorInfo t;
  t.name = std::move(name);
  t.dims = std::move(dims);
  t.type = type;
  t.offset = data_bytes_;  // always aligned: data_bytes_ includes each tensor's padding
  t.n_elements = n_elements;
  t.n_bytes = *n_bytes;
  if (*n_bytes > std::numeric_limits<uint64_t>::max() - t.offset) fail(field, "offset overflows");
  data_bytes_ = align_up(t.offset + *n_bytes, alignment_);
  tensors_.push_back(std::move(t));
}

namespace {

void write_header(Sink& s, uint32_t alignment,
                  const std::vector<std::pair<std::string, Value>>& metadata,
                  const std::vector<TensorInfo>& tensors) {
  s.raw("GGUF", 4);
  s.le<uint32_t>(kVersion);
  s.le<uint64_t>(tensors.size());
  s.le<uint64_t>(metadata.size());
  for (const auto& [key, value] : metadata) {
    s.str(key);
    s.le<uint32_t>(static_cast<uint32_t>(value.type()));
    write_value(s, value);
  }
  for (const auto& t : tensors) {
    s.str(t.name);
    s.le<uint32_t>(static_cast<uint32_t>(t.dims.size()));
    for (uint64_t d : t.dims) s.le<uint64_t>(d);
    s.le<uint32_t>(static_cast<uint32_t>(t.type));
    s.le<uint64_t>(t.offset);
  }
  s.zeros(padding_after(s.size(), alignment));
}

}  // namespace

std::vector<std::byte> Writer::header_bytes() const {
  std::vector<std::byte> out;
  Sink counter(nullptr);
  write_header(counter, alignment_, metadata_, tensors_);
  out.reserve(counter.size());
  Sink sink(&out);
  write_header(sink, alignment_, metadata_, tensors_);
  return out;
}

uint64_t Writer::file_size() const {
  Sink counter(nullptr);
  write_header(counter, alignment_, metadata_, tensors_);
  return counter.size() + data_bytes_;
}

}  // namespace brise::gguf
