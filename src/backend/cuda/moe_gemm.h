// Block-FP8 expert products for MoE steps with many routed rows (prefill), on tensor cores: every
// active expert's tiles of kMoeTileRows rows (topk.h's tiled layout) times its weights, in one
// launch a projection. cuBLASLt has no grouped FP8 matmul, and per-expert calls need the row
// counts on the host; the grouped GEMV (gemv.h) reads an expert's weights again for every 8 rows.
//
// A block computes 64 rows x 128 columns (one weight scale block wide) with Hopper's warpgroup
// MMA, streaming 128-deep slices of both operands through a cp.async ring in shared memory. Each
// slice's sums leave the tensor cores, which add FP8 products with fewer bits than float32, and
// are scaled by the activation's and the weight's scales into float32 sums, as DeepSeek-V3's FP8
// GEMMs promote every 128 k. Needs sm_90a.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace dsserve::backend::cuda {

// Expert e's weights for output segment s (gate and up: two segments; down: one): table[e *
// segments + s], a block-FP8 [n, k] weight, with scales[e * segments + s] ([n / 128][scale_ld]).
struct MoeGemmWeights {
    const void* const* table = nullptr;
    const float* const* scales = nullptr;
    int segments = 1;
    int n = 0;
    int scale_ld = 0;
};

// Row tiles a launch may have (the grid's second dimension).
constexpr std::int64_t kMaxMoeGemmTiles = 65535;

// True when the kernel takes weights of n outputs over k inputs (whole scale blocks).
bool moe_gemm_supports(int n, int k);

// y[r, s n + j] = sum over k of a[r, k] W_s[e](j, k) for every row r of the tiles (tiles, expert:
// MoeTileLayout's tiles and tile_expert; max_tiles bounds *tiles): a8 [rows][k] e4m3 with scales
// as [rows][k / 128], written by launch_moe_quantize_rows.
void launch_moe_gemm_fp8(const unsigned char* a8, const float* as, int k, const std::int32_t* tiles,
                         const std::int32_t* tile_expert, std::int64_t max_tiles,
                         const MoeGemmWeights& w, float* y, int ldy, cudaStream_t stream);

// The tiles' rows to block FP8 (fp8_quant.cuh) for launch_moe_gemm_fp8: row r is x[row_token[r]]
// (zeros where row_token is -1) or, with swiglu (row_token null), silu(x[r, :k]) * x[r, k : 2k]
// as the GEMVs' swiglu input computes it. k a multiple of 128.
void launch_moe_quantize_rows(const float* x, int ldx, int k, const std::int32_t* row_token,
                              bool swiglu, const std::int32_t* tiles, std::int64_t max_tiles,
                              unsigned char* a8, float* as, cudaStream_t stream);

}  // namespace dsserve::backend::cuda
