// NumPy .npy files (format version 1.0) of float32, so logits can be compared with any other
// implementation.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <vector>

namespace dsserve {

void write_npy(const std::filesystem::path& path, std::span<const float> data,
               const std::vector<std::int64_t>& shape);

struct NpyArray {
    std::vector<std::int64_t> shape;
    std::vector<float> data;
};
// Reads a little-endian float32 C-order .npy file; anything else is an Error.
NpyArray read_npy(const std::filesystem::path& path);

}  // namespace dsserve
