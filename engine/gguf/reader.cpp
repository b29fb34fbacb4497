// GGUF version 3 reader. Every count, length, dimension, offset and size read from the file is
// checked against the bytes that really remain, with overflow-safe arithmetic, before it is used
// to allocate or index anything: a hostile file can make the parser fail, never crash or balloon.
#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <numeric>
#include <string>

#include "brise/error.hpp"
#include "brise/gguf.hpp"
#include "engine/gguf/format.hpp"
#include "engine/gguf/mapped_file.hpp"

namespace brise::gguf {

static_assert(std::endian::native == std::endian::little,
              "the GGUF reader decodes little-endian fields with memcpy");

struct File::Mapping {
  explicit Mapping(const std::filesystem::path& path) : file(path) {}
  MappedFile file;
};

File::~File() = default;

namespace {

std::string u64s(uint64_t v) {
  return std::to_string(v);
}

// "a x b x c", for messages about tensor shapes.
std::string dims_text(const std::vector<uint64_t>& dims) {
  std::string s;
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? " x " : "") + u64s(dims[i]);
  return s;
}

std::string supported_types_text() {
  return "brise reads " + tensor_type_names();
}

}  // namespace

class Parser {
 public:
  Parser(File& file, const ReadLimits& limits) : f_(file), limits_(limits), bytes_(file.bytes_) {}

  void run() {
    read_header();
    read_metadata();
    check_duplicate_keys();
    read_alignment();
    read_tensor_infos();
    place_tensor_data();
    check_duplicate_tensor_names();
    check_overlaps();
  }

 private:
  // --- error reporting: "<file>: <field>: <problem>" ---

  [[noreturn]] void fail(std::string_view field, const std::string& problem) const {
    throw Error(f_.name_ + ": " + std::string(field) + ": " + problem);
  }
  // The field being read now, including the element indices of nested arrays.
  std::string here() const {
    std::string s = field_;
    for (uint64_t i : index_path_) {
      s += '[';  // appended piecewise: GCC 12 warns (-Wrestrict) on "[" + std::string
      s += u64s(i);
      s += ']';
    }
    return s;
  }
  [[noreturn]] void fail_here(const std::string& problem) const { fail(here(), problem); }

  uint64_t size() const { return bytes_.size(); }
  uint64_t remaining() const { return bytes_.size() - pos_; }

  [[noreturn]] void fail_past_end(const std::string& what) const {
    fail_here(what + " at offset " + u64s(pos_) + " runs past the end of the file (" +
              u64s(size()) + " bytes)");
  }

  // --- primitive reads ---

  template <typename T>
  T read(std::string_view what) {
    if (remaining() < sizeof(T))
      fail_past_end(std::string(what) + " (" + std::to_string(sizeof(T)) + " bytes)");
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string read_string(std::string_view what, uint64_t limit) {
    const uint64_t len = read<uint64_t>(std::string(what) + " length");
    if (len > remaining()) fail_past_end(std::string(what) + " of " + u64s(len) + " bytes");
    if (len > limit)
      fail_here(std::string(what) + " of " + u64s(len) + " bytes exceeds the limit of " +
                u64s(limit) + " bytes");
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), len);
    pos_ += len;
    return s;
  }

  ValueType read_value_type(std::string_view what) {
    const uint32_t id = read<uint32_t>(what);
    if (!is_valid_value_type(id))
      fail_here("unknown " + std::string(what) + " " + std::to_string(id) +
                " (GGUF value types are 0..12)");
    return static_cast<ValueType>(id);
  }

  // --- header ---

  void read_header() {
    field_ = "header";
    if (size() < 4)
      fail("header", "file is " + u64s(size()) + " bytes, too short for a GGUF header (" +
                         u64s(kHeaderBytes) + " bytes); runs past the end of the file");
    const auto* b = reinterpret_cast<const unsigned char*>(bytes_.data());
    const std::string magic(reinterpret_cast<const char*>(b), 4);
    if (magic == "FUGG")
      fail("header: magic",
           "file is big-endian (magic bytes 'FUGG'); brise reads little-endian "
           "GGUF only");
    if (magic != "GGUF") {
      if (magic == "lmgg" || magic == "fmgg" || magic == "tjgg")
        fail("header: magic", "legacy GGML/GGMF/GGJT file (magic '" + printable(magic) +
                                  "'); convert it to GGUF version 3");
      fail("header: magic",
           "wrong magic '" + printable(magic) + "' (expected 'GGUF'): not a GGUF file");
    }
    pos_ = 4;
    field_ = "header: version";
    const uint32_t version = read<uint32_t>("version");
    if (version != kVersion) {
      const uint32_t swapped = byteswap32(version);
      if (swapped >= 1 && swapped <= kVersion)
        fail("header: version", "file is big-endian (byte-swapped version " +
                                    std::to_string(swapped) +
                                    "); brise reads little-endian GGUF only");
      fail("header: version", "unsupported GGUF version " + std::to_string(version) +
                                  "; brise reads version " + std::to_string(kVersion));
    }
    f_.version_ = version;
    field_ = "header: tensor_count";
    n_tensors_ = read<uint64_t>("tensor_count");
    field_ = "header: metadata_kv_count";
    n_metadata_ = read<uint64_t>("metadata_kv_count");

    // Every metadata pair and tensor info has a minimum encoded size; counts that cannot fit in
    // the rest of the file are rejected before anything is reserved.
    const auto kv_min = checked_mul(n_metadata_, kMinMetadataBytes);
    if (!kv_min || *kv_min > remaining())
      fail("header: metadata_kv_count",
           "count " + u64s(n_metadata_) + " needs at least " +
               (kv_min ? u64s(*kv_min) : std::string("more than 2^64")) + " bytes but only " +
               u64s(remaining()) + " bytes follow the header (runs past the end of the file)");
    const auto ti_min = checked_mul(n_tensors_, kMinTensorInfoBytes);
    if (!ti_min || *ti_min > remaining() - *kv_min)
      fail("header: tensor_count",
           "count " + u64s(n_tensors_) + " needs at least " +
               (ti_min ? u64s(*ti_min) : std::string("more than 2^64")) +
               " bytes of tensor infos but only " + u64s(remaining() - *kv_min) +
               " bytes can follow the metadata (runs past the end of the file)");
    if (n_metadata_ > limits_.max_metadata)
      fail("header: metadata_kv_count",
           "count " + u64s(n_metadata_) + " exceeds the limit of " + u64s(limits_.max_metadata));
    if (n_tensors_ > limits_.max_tensors)
      fail("header: tensor_count",
           "count " + u64s(n_tensors_) + " exceeds the limit of " + u64s(limits_.max_tensors));
  }

  static uint32_t byteswap32(uint32_t v) {
    return (v >> 24) | ((v >> 8) & 0xff00u) | ((v << 8) & 0xff0000u) | (v << 24);
  }

  // Names and keys for messages: control and non-ASCII bytes escaped, very long ones cut.
  static std::string printable(std::string_view s) {
    constexpr size_t kMaxShown = 120;
    std::string out;
    for (unsigned char c : s.substr(0, kMaxShown)) {
      if (c >= 0x20 && c < 0x7f) {
        out += static_cast<char>(c);
      } else {
        static constexpr char kHex[] = "0123456789abcdef";
        out += "\\x";
        out += kHex[c >> 4];
        out += kHex[c & 15];
      }
    }
    if (s.size() > kMaxShown) out += "... (" + std::to_string(s.size()) + " bytes)";
    return out;
  }

  // --- metadata ---

  void read_metadata() {
    f_.metadata_.reserve(n_metadata_);
    for (uint64_t i = 0; i < n_metadata_; ++i) {
      field_ = "metadata " + u64s(i);
      std::string key = read_string("key", kMaxKeyBytes);
      field_ = "metadata " + u64s(i) + " '" + printable(key) + "'";
      const ValueType type = read_value_type("value type");
      Value value = read_value(type, 0);
      f_.metadata_.emplace_back(std::move(key), std::move(value));
    }
  }

  Value read_value(ValueType type, uint32_t depth) {
    switch (type) {
      case ValueType::U8:
        return read<uint8_t>("u8 value");
      case ValueType::I8:
        return read<int8_t>("i8 value");
      case ValueType::U16:
        return read<uint16_t>("u16 value");
      case ValueType::I16:
        return read<int16_t>("i16 value");
      case ValueType::U32:
        return read<uint32_t>("u32 value");
      case ValueType::I32:
        return read<int32_t>("i32 value");
      case ValueType::F32:
        return read<float>("f32 value");
      case ValueType::U64:
        return read<uint64_t>("u64 value");
      case ValueType::I64:
        return read<int64_t>("i64 value");
      case ValueType::F64:
        return read<double>("f64 value");
      case ValueType::BOOL: {
        const uint8_t b = read<uint8_t>("bool value");
        if (b > 1) fail_here("invalid bool value " + std::to_string(b) + " (must be 0 or 1)");
        return b == 1;
      }
      case ValueType::STRING:
        return read_string("string", limits_.max_string_bytes);
      case ValueType::ARRAY:
        return read_array(depth + 1);
    }
    fail_here("unknown value type");  // unreachable: types are validated when read
  }

  // Reads an array's element type, count and items; `depth` is 1 for a top-level array.
  Array read_array(uint32_t depth) {
    if (depth > limits_.max_array_depth)
      fail_here("arrays nested deeper than " + std::to_string(limits_.max_array_depth) +
                " levels (the limit)");
    Array array;
    array.elem_type = read_value_type("array element type");
    const uint64_t count = read<uint64_t>("array length");
    const uint64_t min_bytes = min_encoded_bytes(array.elem_type);
    const auto need = checked_mul(count, min_bytes);
    if (!need || *need > remaining())
      fail_here("array of " + u64s(count) + " " + std::string(value_type_name(array.elem_type)) +
                " items needs at least " + (need ? u64s(*need) : std::string("more than 2^64")) +
                " bytes at offset " + u64s(pos_) + ", which runs past the end of the file (" +
                u64s(size()) + " bytes)");
    if (count > limits_.max_array_items)
      fail_here("array of " + u64s(count) + " items exceeds the limit of " +
                u64s(limits_.max_array_items) + " items");
    total_array_items_ += count;  // no overflow: each count is at most max_array_items
    if (total_array_items_ > limits_.max_total_array_items)
      fail_here("metadata arrays hold more than " + u64s(limits_.max_total_array_items) +
                " items in all (the limit)");
    array.items.reserve(count);
    index_path_.push_back(0);
    for (uint64_t i = 0; i < count; ++i) {
      index_path_.back() = i;
      if (array.elem_type == ValueType::ARRAY)
        array.items.emplace_back(read_array(depth + 1));
      else
        array.items.push_back(read_value(array.elem_type, depth));
    }
    index_path_.pop_back();
    return array;
  }

  void check_duplicate_keys() {
    std::vector<size_t> order(f_.metadata_.size());
    std::iota(order.begin(), order.end(), size_t{0});
    const auto& md = f_.metadata_;
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return md[a].first < md[b].first; });
    for (size_t i = 1; i < order.size(); ++i) {
      if (md[order[i]].first != md[order[i - 1]].first) continue;
      fail("metadata " + u64s(order[i]) + " '" + printable(md[order[i]].first) + "'",
           "duplicate metadata key (first defined by metadata " + u64s(order[i - 1]) + ")");
    }
  }

  void read_alignment() {
    const Value* v = f_.find(kAlignmentKey);
    if (!v) return;
    const std::string field = "metadata '" + std::string(kAlignmentKey) + "'";
    if (v->type() != ValueType::U32)
      fail(field, "expected type u32, got " + std::string(value_type_name(v->type())));
    const uint32_t a = std::get<uint32_t>(v->data);
    if (a == 0 || !std::has_single_bit(a))
      fail(field, "alignment " + std::to_string(a) + " is not a power of two");
    if (a > kMaxAlignment)
      fail(field, "alignment " + std::to_string(a) + " is absurdly large (limit " +
                      std::to_string(kMaxAlignment) + ")");
    f_.alignment_ = a;
  }

  // --- tensor infos ---

  void read_tensor_infos() {
    f_.tensors_.reserve(n_tensors_);
    for (uint64_t i = 0; i < n_tensors_; ++i) {
      field_ = "tensor " + u64s(i);
      TensorInfo t;
      t.name = read_string("name", limits_.max_string_bytes);
      field_ = "tensor " + u64s(i) + " '" + printable(t.name) + "'";
      const uint32_t n_dims = read<uint32_t>("n_dims");
      if (n_dims == 0 || n_dims > limits_.max_dims)
        fail_here("n_dims " + std::to_string(n_dims) + " is out of range (1.." +
                  std::to_string(limits_.max_dims) + ")");
      t.dims.reserve(n_dims);
      uint64_t n_elements = 1;
      bool overflow = false;
      for (uint32_t d = 0; d < n_dims; ++d) {
        const uint64_t dim = read<uint64_t>("dimension " + std::to_string(d));
        if (dim == 0) fail_here("dimension " + std::to_string(d) + " is 0");
        t.dims.push_back(dim);
        const auto product = checked_mul(n_elements, dim);
        if (!product || *product > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
          overflow = true;
        else
          n_elements = *product;
      }
      if (overflow) fail_here("element count of dims " + dims_text(t.dims) + " overflows int64");
      const uint32_t type_id = read<uint32_t>("type");
      t.n_elements = n_elements;
      t.type = static_cast<TensorType>(type_id);
      t.n_bytes = tensor_bytes(t, type_id);
      t.offset = read<uint64_t>("offset");
      if (t.offset % f_.alignment_ != 0)
        fail_here("offset " + u64s(t.offset) + " is misaligned (not a multiple of the alignment " +
                  std::to_string(f_.alignment_) + ")");
      f_.tensors_.push_back(std::move(t));
    }
  }

  // Validates the type and the row layout; returns the tensor's size in bytes.
  uint64_t tensor_bytes(const TensorInfo& t, uint32_t type_id) const {
    std::string_view name;
    uint32_t block_elems = 0, block_bytes = 0;
    if (const auto type = tensor_type_from_id(type_id)) {
      const auto& info = tensor_type_info(*type);
      name = info.name;
      block_elems = info.block_elems;
      block_bytes = info.block_bytes;
    } else if (const GgmlTypeLayout* g = find_foreign_ggml_type(type_id);
               g && limits_.accept_foreign_tensor_types) {
      name = g->name;
      block_elems = g->block_elems;
      block_bytes = g->block_bytes;
    } else {
      fail_here("unsupported tensor type id " + std::to_string(type_id) + " (" +
                supported_types_text() + ")");
    }
    const uint64_t row = t.dims[0];
    if (row % block_elems != 0)
      fail_here("row length " + u64s(row) + " is not a multiple of the " + std::string(name) +
                " block size " + std::to_string(block_elems));
    const auto row_bytes = checked_mul(row / block_elems, block_bytes);
    const auto n_bytes = row_bytes ? checked_mul(*row_bytes, t.n_elements / row) : std::nullopt;
    if (!n_bytes) fail_here("byte size of dims " + dims_text(t.dims) + " overflows");
    return *n_bytes;
  }

  void place_tensor_data() {
    const uint64_t a = f_.alignment_;
    // pos_ <= size() and a <= 2^24, so this cannot overflow.
    const uint64_t data_offset = (pos_ + a - 1) / a * a;
    if (data_offset > size())
      fail("data section", "padding to the alignment " + u64s(a) + " ends at offset " +
                               u64s(data_offset) + ", past the end of the file (" + u64s(size()) +
                               " bytes)");
    f_.data_offset_ = data_offset;
    const uint64_t data_size = size() - data_offset;
    for (size_t i = 0; i < f_.tensors_.size(); ++i) {
      TensorInfo& t = f_.tensors_[i];
      if (t.offset > data_size || t.n_bytes > data_size - t.offset)
        fail(tensor_field(i), "data (offset " + u64s(t.offset) + ", " + u64s(t.n_bytes) +
                                  " bytes) runs past the end of the file (" + u64s(size()) +
                                  " bytes; data section starts at " + u64s(data_offset) + ")");
      t.data = bytes_.data() + data_offset + t.offset;
    }
  }

  std::string tensor_field(size_t i) const {
    return "tensor " + u64s(i) + " '" + printable(f_.tensors_[i].name) + "'";
  }

  void check_duplicate_tensor_names() {
    const auto& ts = f_.tensors_;
    std::vector<size_t> order(ts.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return ts[a].name < ts[b].name; });
    for (size_t i = 1; i < order.size(); ++i)
      if (ts[order[i]].name == ts[order[i - 1]].name)
        fail(tensor_field(order[i]),
             "duplicate tensor name (also tensor " + u64s(order[i - 1]) + ")");
  }

  void check_overlaps() {
    const auto& ts = f_.tensors_;
    std::vector<size_t> order(ts.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return ts[a].offset < ts[b].offset; });
    for (size_t i = 1; i < order.size(); ++i) {
      const TensorInfo& prev = ts[order[i - 1]];
      const TensorInfo& cur = ts[order[i]];
      // Both ranges were checked to lie inside the file, so the end cannot overflow.
      if (prev.offset + prev.n_bytes > cur.offset)
        fail(tensor_field(order[i]),
             "data (bytes " + u64s(cur.offset) + ".." + u64s(cur.offset + cur.n_bytes) +
                 " of the data section) overlaps tensor " + u64s(order[i - 1]) + " '" +
                 printable(prev.name) + "' (bytes " + u64s(prev.offset) + ".." +
                 u64s(prev.offset + prev.n_bytes) + ")");
    }
  }

  File& f_;
  const ReadLimits& limits_;
  uint64_t total_array_items_ = 0;
  std::span<const std::byte> bytes_;
  uint64_t pos_ = 0;
  uint64_t n_tensors_ = 0;
  uint64_t n_metadata_ = 0;
  std::string field_;
  std::vector<uint64_t> index_path_;

 public:
  static std::shared_ptr<const File> make(std::unique_ptr<File::Mapping> mapping,
                                          std::span<const std::byte> bytes, std::string name,
                                          const ReadLimits& limits) {
    std::shared_ptr<File> file(new File());
    file->mapping_ = std::move(mapping);
    file->bytes_ = bytes;
    file->name_ = std::move(name);
    Parser(*file, limits).run();
    return file;
  }
};

std::shared_ptr<const File> File::open(const std::filesystem::path& path,
                                       const ReadLimits& limits) {
  auto mapping = std::make_unique<Mapping>(path);
  const auto bytes = mapping->file.bytes();
  return Parser::make(std::move(mapping), bytes, path.string(), limits);
}

void File::release(const TensorInfo& tensor) const {
  if (mapping_) mapping_->file.release({tensor.data, tensor.n_bytes});
}

std::shared_ptr<const File> File::parse(std::span<const std::byte> bytes, std::string name,
                                        const ReadLimits& limits) {
  return Parser::make(nullptr, bytes, std::move(name), limits);
}

std::string_view ggml_type_name(uint32_t ggml_type_id) {
  if (const auto type = tensor_type_from_id(ggml_type_id)) return tensor_type_name(*type);
  const GgmlTypeLayout* g = find_foreign_ggml_type(ggml_type_id);
  return g ? g->name : "unknown";
}

// --- lookups ---

const Value* File::find(std::string_view key) const {
  for (const auto& [k, v] : metadata_)
    if (k == key) return &v;
  return nullptr;
}

const Value& File::get(std::string_view key) const {
  if (const Value* v = find(key)) return *v;
  throw Error(name_ + ": missing metadata key '" + std::string(key) + "'");
}

namespace {
std::string key_field(const std::string& file, std::string_view key) {
  return file + ": metadata '" + std::string(key) + "'";
}
}  // namespace

uint64_t File::get_uint(std::string_view key) const {
  return get(key).as_uint(key_field(name_, key));
}

std::optional<uint64_t> File::get_uint_or(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  return v->as_uint(key_field(name_, key));
}

double File::get_float(std::string_view key) const {
  return get(key).as_float(key_field(name_, key));
}

std::string File::get_string(std::string_view key) const {
  return get(key).as_string(key_field(name_, key));
}

bool File::get_bool_or(std::string_view key, bool fallback) const {
  const Value* v = find(key);
  if (!v) return fallback;
  return v->as_bool(key_field(name_, key));
}

const TensorInfo* File::find_tensor(std::string_view name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

const TensorInfo& File::tensor(std::string_view name) const {
  if (const TensorInfo* t = find_tensor(name)) return *t;
  throw Error(name_ + ": missing tensor '" + std::string(name) + "'");
}

}  // namespace brise::gguf
