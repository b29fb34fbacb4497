// The one loop that writes a model file for convert, quantize and synth: the GGUF header, then
// each tensor's data, made in parallel chunks of rows, through an OutputFile (so nothing is left
// at the destination unless all of it was written), with progress.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>

#include "brise/gguf.hpp"
#include "brise/write_progress.hpp"

namespace brise {

// How the data of one tensor declared to the gguf::Writer is made.
struct TensorData {
  // Bytes already in the output type, written as they are (when make_row is empty).
  std::span<const std::byte> bytes;
  // Otherwise: makes row `row` in the output type at `out`; `scratch` has room for the row's
  // f32 values. Called for several rows at once from OpenMP threads; may throw.
  std::function<void(uint64_t row, float* scratch, std::byte* out)> make_row;
  // Called once the tensor's data is written (e.g. to release the input's pages).
  std::function<void()> written;
};

// Writes `output`: `writer`'s header, then the data `tensor_data(i)` makes for each tensor the
// writer declares, each padded to the alignment. A row that throws stops the writing with
// brise::Error "<where>: tensor '<name>' to <type>: <what>". The progress's seconds count from
// `start`.
void write_gguf(const std::filesystem::path& output, const gguf::Writer& writer,
                const std::string& where,
                const std::function<TensorData(size_t index)>& tensor_data,
                const WriteProgressCallback& progress, std::chrono::steady_clock::time_point start);

}  // namespace brise
