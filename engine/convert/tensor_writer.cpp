#include "engine/convert/tensor_writer.hpp"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <vector>

#include "brise/error.hpp"
#include "brise/output_file.hpp"

namespace brise {
namespace {

constexpr uint64_t kBatchElements = 4u << 20;  // rows made per chunk: ~16 MB of f32

// Makes the rows of `t` chunk by chunk in parallel and writes each chunk; `after_chunk` reports.
void write_rows(OutputFile& out, const gguf::TensorInfo& t, const TensorData& data,
                const std::string& where, const std::function<void()>& after_chunk,
                std::vector<float>& scratch, std::vector<std::byte>& buffer) {
  const uint64_t cols = t.row_length(), rows = t.n_rows();
  const uint64_t out_row_bytes = *tensor_row_bytes(t.type, cols);
  const uint64_t batch_rows = std::min(rows, std::max<uint64_t>(1, kBatchElements / cols));
  scratch.resize(static_cast<size_t>(batch_rows * cols));
  buffer.resize(static_cast<size_t>(batch_rows * out_row_bytes));
  // An exception must not leave an OpenMP region: the first one is kept and thrown after it.
  std::mutex error_mutex;
  std::string error;
  std::atomic<bool> failed{false};
  for (uint64_t r0 = 0; r0 < rows; r0 += batch_rows) {
    const uint64_t n = std::min(batch_rows, rows - r0);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < static_cast<int64_t>(n); ++i) {
      if (failed.load(std::memory_order_relaxed)) continue;
      try {
        data.make_row(r0 + static_cast<uint64_t>(i), scratch.data() + i * cols,
                      buffer.data() + i * out_row_bytes);
      } catch (const std::exception& x) {
        std::lock_guard lock(error_mutex);
        if (!failed.exchange(true)) error = x.what();
      }
    }
    if (failed)
      throw Error(where + ": tensor '" + t.name + "' to " + std::string(tensor_type_name(t.type)) +
                  ": " + error);
    out.write({buffer.data(), static_cast<size_t>(n * out_row_bytes)});
    after_chunk();
  }
}

}  // namespace

void write_gguf(const std::filesystem::path& output, const gguf::Writer& writer,
                const std::string& where, const std::function<TensorData(size_t)>& tensor_data,
                const WriteProgressCallback& progress,
                std::chrono::steady_clock::time_point start) {
  const std::vector<gguf::TensorInfo>& tensors = writer.tensors();
  const uint64_t total = writer.file_size();
  OutputFile out(output);
  out.write(writer.header_bytes());

  WriteProgress p;
  p.n_tensors = tensors.size();
  p.bytes_total = total;
  const std::function<void()> report = [&] {
    if (!progress) return;
    p.bytes_done = out.bytes_written();
    p.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    progress(p);
  };

  std::vector<float> scratch;
  std::vector<std::byte> buffer;
  for (size_t ti = 0; ti < tensors.size(); ++ti) {
    const gguf::TensorInfo& t = tensors[ti];
    p.tensor_index = ti;
    p.tensor_name = t.name;
    report();
    const TensorData data = tensor_data(ti);
    if (data.make_row) {
      write_rows(out, t, data, where, report, scratch, buffer);
    } else {
      if (data.bytes.size() != t.n_bytes)
        throw Error(where + ": internal error: tensor '" + t.name + "' has " +
                    std::to_string(data.bytes.size()) + " bytes, expected " +
                    std::to_string(t.n_bytes));
      out.write(data.bytes);
      report();
    }
    out.write_zeros(gguf::padding_after(t.n_bytes, gguf::kDefaultAlignment));
    if (data.written) data.written();
  }
  if (out.bytes_written() != total)
    throw Error(output.string() + ": internal error: wrote " + std::to_string(out.bytes_written()) +
                " bytes, expected " + std::to_string(total));
  out.commit();
  p.tensor_index = tensors.size();
  p.tensor_name = {};
  report();
}

}  // namespace brise
