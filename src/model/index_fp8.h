// The lightning indexer in FP8, as DeepSeek-V3.2 runs it: index keys are kept in the cache as
// e4m3 with one power-of-two (UE8M0) scale a row, and each head's query row is quantized the same
// way before scoring. Both are first rotated by the normalized Walsh-Hadamard transform, which
// leaves every query-key dot product unchanged but spreads an outlier's magnitude over the whole
// row, so that one scale fits it. These host routines define the arithmetic; a device backend
// must reproduce them (rotation stage by stage, then the scale and the e4m3 rounding).
#pragma once

#include <span>

namespace dsserve::model {

// Rows of this width can be kept in FP8: a power of two from 32 (one tensor-core k-step of e4m3)
// to 128 (one scale block).
bool fp8_index_supported(int head_dim);

// The normalization of the rotation: 1 / sqrt(n), as a float, which a device backend takes as it
// is rather than computing its own.
float hadamard_norm(int n);

// In place: row <- H row * hadamard_norm(n), H the n x n Sylvester-Hadamard matrix, by the
// butterfly stages h = 1, 2, 4, ... (pairs (j, j + h) become (a + b, a - b)).
void hadamard_rotate(std::span<float> row);

// The row's scale: the smallest power of two s with max|row| <= 448 s (max|row| taken as at least
// 1e-4, so that a row of zeros gets a finite scale).
float e4m3_row_scale(std::span<const float> row);

// In place: each value rounded to e4m3 at the row's scale (value = e4m3(v / s) * s, nearest, ties
// to even). Returns s.
float quantize_e4m3_row(std::span<float> row);

// In place, for each of the rows of `width` values that make up `values`: hadamard_rotate, then
// quantize_e4m3_row. What an FP8 key or a query head goes through before scoring.
void rotate_and_quantize_rows(std::span<float> values, int width);

}  // namespace dsserve::model
