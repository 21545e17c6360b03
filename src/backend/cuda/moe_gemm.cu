// The tiled FP8 expert GEMM (see moe_gemm.h).
//
// A block of 4 warps owns a 64 x 128 output tile; warp w computes rows 32 (w / 2) .. + 32 and
// columns 64 (w % 2) .. + 64 as 2 x 8 mma tiles. Each 128-deep slice of k is one scale block of
// both operands: 8 KB of activations and 16 KB of weights, brought to shared memory by cp.async
// kStages slices ahead of the tensor cores, with 16-byte chunks of a row XOR-swizzled by the row
// so that the ldmatrix reads (8 rows of one chunk column) touch every bank once. Blocks run the
// column tiles of one row tile next to each other, so that a row tile's activations are read from
// HBM once, and an expert's row tiles follow one another while its weights are in L2.
#include <cuda_fp8.h>

#include <algorithm>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/fp8_quant.cuh"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/mma.cuh"
#include "backend/cuda/moe_gemm.h"
#include "backend/cuda/topk.h"

namespace dsserve::backend::cuda {
namespace {

constexpr int kWarp = 32;
constexpr int kThreads = 128;
constexpr int kTileCols = 128;  // one weight scale block
constexpr int kBlockK = 128;    // one scale block of k
constexpr int kABytes = kMoeTileRows * kBlockK;
constexpr int kBBytes = kTileCols * kBlockK;
constexpr int kStageBytes = kABytes + kBBytes;
constexpr int kStages = 4;
constexpr int kBlocksPerSm = 2;  // as many as 255 registers a thread allow
constexpr int kSmemBytes = kStages * kStageBytes;
constexpr int kWarpRows = 32, kWarpCols = 64;
constexpr int kMmaM = kWarpRows / 16, kMmaN = kWarpCols / 8;

// Byte offset of 16-byte chunk `chunk` of row `row` in a slice of 128-byte rows.
__device__ __forceinline__ unsigned swizzled(int row, int chunk) {
    return static_cast<unsigned>(row * kBlockK + ((chunk ^ (row & 7)) << 4));
}

// rows x 128 bytes from src (rows ld bytes apart) into the slice at dst.
template <int Rows>
__device__ __forceinline__ void load_slice(unsigned dst, const unsigned char* src,
                                           std::int64_t ld) {
    constexpr int kChunks = Rows * (kBlockK / 16);
#pragma unroll
    for (int i = static_cast<int>(threadIdx.x); i < kChunks; i += kThreads) {
        const int row = i / (kBlockK / 16), chunk = i % (kBlockK / 16);
        copy_async16(dst + swizzled(row, chunk), src + row * ld + chunk * 16);
    }
}

__global__ void __launch_bounds__(kThreads, kBlocksPerSm)
    moe_gemm_fp8_kernel(const unsigned char* a8, const float* as, int k, const std::int32_t* tiles,
                        const std::int32_t* tile_expert, MoeGemmWeights w, float* y, int ldy) {
    pdl_enter();
    const int tile = static_cast<int>(blockIdx.y);
    if (tile >= *tiles) {
        return;
    }
    const int e = tile_expert[tile];
    const int col_tiles = w.n / kTileCols;
    const int seg = static_cast<int>(blockIdx.x) / col_tiles;
    const int col0 = (static_cast<int>(blockIdx.x) % col_tiles) * kTileCols;
    const auto* wb = static_cast<const unsigned char*>(w.table[e * w.segments + seg]) +
                     static_cast<std::int64_t>(col0) * k;
    const float* wscale = w.scales[e * w.segments + seg] + (col0 / kTileCols) * w.scale_ld;
    const std::int64_t row0 = static_cast<std::int64_t>(tile) * kMoeTileRows;
    const unsigned char* ab = a8 + row0 * k;
    const int kblocks = k / kBlockK;

    extern __shared__ __align__(128) unsigned char smem[];
    const auto base = static_cast<unsigned>(__cvta_generic_to_shared(smem));
    auto load_stage = [&](int kb) {
        const unsigned sa = base + (kb % kStages) * kStageBytes;
        load_slice<kMoeTileRows>(sa, ab + kb * kBlockK, k);
        load_slice<kTileCols>(sa + kABytes, wb + kb * kBlockK, k);
    };
#pragma unroll
    for (int s = 0; s < kStages - 1; ++s) {
        if (s < kblocks) {
            load_stage(s);
        }
        commit_async();
    }

    const int lane = static_cast<int>(threadIdx.x) % kWarp,
              warp = static_cast<int>(threadIdx.x) / kWarp;
    constexpr int kWarpsAcross = kTileCols / kWarpCols;
    const int wrow = (warp / kWarpsAcross) * kWarpRows, wcol = (warp % kWarpsAcross) * kWarpCols;
    // This lane's accumulator rows (mma layout): lane / 4 and lane / 4 + 8 of each 16-row tile.
    int rows[kMmaM][2];
#pragma unroll
    for (int mi = 0; mi < kMmaM; ++mi) {
        rows[mi][0] = wrow + mi * 16 + lane / 4;
        rows[mi][1] = rows[mi][0] + 8;
    }
    // ldmatrix addresses: lanes 8i .. 8i + 7 name the rows of matrix i.
    const int a_row = (lane & 7) + ((lane >> 3) & 1) * 8, a_chunk = lane >> 4;
    const int b_row = (lane & 7) + (lane >> 4) * 8, b_chunk = (lane >> 3) & 1;

    float acc[kMmaM][kMmaN][4] = {};
    for (int kb = 0; kb < kblocks; ++kb) {
        wait_async<kStages - 2>();
        __syncthreads();  // the slice has landed, and every warp is done with the one reloaded next
        if (kb + kStages - 1 < kblocks) {
            load_stage(kb + kStages - 1);
        }
        commit_async();
        const unsigned sa = base + (kb % kStages) * kStageBytes, sb = sa + kABytes;
        // The block's scales, loaded now so that the products below hide their latency.
        const float ws = wscale[kb];
        float row_scale[kMmaM][2];
#pragma unroll
        for (int mi = 0; mi < kMmaM; ++mi) {
            row_scale[mi][0] = as[(row0 + rows[mi][0]) * kblocks + kb];
            row_scale[mi][1] = as[(row0 + rows[mi][1]) * kblocks + kb];
        }
        float part[kMmaM][kMmaN][4] = {};
#pragma unroll
        for (int ks = 0; ks < kBlockK / 32; ++ks) {
            uint4 af[kMmaM];
#pragma unroll
            for (int mi = 0; mi < kMmaM; ++mi) {
                af[mi] = load_matrix_x4(sa + swizzled(wrow + mi * 16 + a_row, 2 * ks + a_chunk));
            }
#pragma unroll
            for (int nj = 0; nj < kMmaN / 2; ++nj) {
                const uint4 bf =
                    load_matrix_x4(sb + swizzled(wcol + nj * 16 + b_row, 2 * ks + b_chunk));
#pragma unroll
                for (int mi = 0; mi < kMmaM; ++mi) {
                    mma_e4m3(part[mi][2 * nj], af[mi].x, af[mi].y, af[mi].z, af[mi].w, bf.x, bf.y);
                    mma_e4m3(part[mi][2 * nj + 1], af[mi].x, af[mi].y, af[mi].z, af[mi].w, bf.z,
                             bf.w);
                }
            }
        }
#pragma unroll
        for (int mi = 0; mi < kMmaM; ++mi) {
            const float s0 = row_scale[mi][0] * ws, s1 = row_scale[mi][1] * ws;
#pragma unroll
            for (int ni = 0; ni < kMmaN; ++ni) {
                acc[mi][ni][0] += part[mi][ni][0] * s0;
                acc[mi][ni][1] += part[mi][ni][1] * s0;
                acc[mi][ni][2] += part[mi][ni][2] * s1;
                acc[mi][ni][3] += part[mi][ni][3] * s1;
            }
        }
    }
    wait_async<0>();

    float* out = y + row0 * ldy + seg * w.n + col0 + wcol + 2 * (lane % 4);
#pragma unroll
    for (int mi = 0; mi < kMmaM; ++mi) {
#pragma unroll
        for (int ni = 0; ni < kMmaN; ++ni) {
            *reinterpret_cast<float2*>(out + rows[mi][0] * ldy + ni * 8) =
                make_float2(acc[mi][ni][0], acc[mi][ni][1]);
            *reinterpret_cast<float2*>(out + rows[mi][1] * ldy + ni * 8) =
                make_float2(acc[mi][ni][2], acc[mi][ni][3]);
        }
    }
}

// One warp per (row, 128-value group), fp8_quant.cuh's rounding, over the rows of *tiles tiles.
__global__ void moe_quantize_rows_kernel(const float* x, int ldx, int k,
                                         const std::int32_t* row_token, bool swiglu,
                                         const std::int32_t* tiles, unsigned char* a8, float* as) {
    pdl_enter();
    const int lane = static_cast<int>(threadIdx.x) % kWarp;
    const std::int64_t item =
        (static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
    const int groups = k / kBlockK;
    if (item >= static_cast<std::int64_t>(*tiles) * kMoeTileRows * groups) {
        return;
    }
    const std::int64_t row = item / groups;
    const int g = static_cast<int>(item % groups);
    const std::int64_t src_row = row_token != nullptr ? row_token[row] : row;
    float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (src_row >= 0) {
        const float* src = x + src_row * ldx + g * kBlockK + 4 * lane;
        v = *reinterpret_cast<const float4*>(src);
        if (swiglu) {
            const float4 up = *reinterpret_cast<const float4*>(src + k);
            v = make_float4(swiglu_value(v.x, up.x), swiglu_value(v.y, up.y),
                            swiglu_value(v.z, up.z), swiglu_value(v.w, up.w));
        }
    }
    quantize_group_warp(v, a8 + row * k + g * kBlockK, as + row * groups + g);
}

}  // namespace

bool moe_gemm_supports(int n, int k) {
    return n > 0 && k > 0 && n % kTileCols == 0 && k % kBlockK == 0;
}

void launch_moe_gemm_fp8(const unsigned char* a8, const float* as, int k, const std::int32_t* tiles,
                         const std::int32_t* tile_expert, std::int64_t max_tiles,
                         const MoeGemmWeights& w, float* y, int ldy, cudaStream_t stream) {
    DS_ASSERT(
        moe_gemm_supports(w.n, k) && w.segments >= 1 && ldy % 2 == 0 && ldy >= w.segments * w.n,
        "MoE FP8 GEMM: ", w.segments, " x ", w.n, " columns over ", k, ", ld ", ldy);
    if (max_tiles == 0) {
        return;
    }
    DS_ASSERT(max_tiles <= kMaxMoeGemmTiles, "MoE FP8 GEMM: ", max_tiles, " row tiles");
    static const bool configured = [] {
        check_cuda(cudaFuncSetAttribute(moe_gemm_fp8_kernel,
                                        cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes),
                   "cudaFuncSetAttribute (MoE FP8 GEMM)");
        return true;
    }();
    (void)configured;
    const dim3 grid(static_cast<unsigned>(w.segments * (w.n / kTileCols)),
                    static_cast<unsigned>(max_tiles));
    launch_kernel(moe_gemm_fp8_kernel, grid, kThreads, kSmemBytes, stream, a8, as, k, tiles,
                  tile_expert, w, y, ldy);
    DS_CUDA_LAUNCH(moe_gemm_fp8, stream, max_tiles, " row tiles (bound) x ", w.segments, " x ", w.n,
                   " columns over ", k);
}

void launch_moe_quantize_rows(const float* x, int ldx, int k, const std::int32_t* row_token,
                              bool swiglu, const std::int32_t* tiles, std::int64_t max_tiles,
                              unsigned char* a8, float* as, cudaStream_t stream) {
    DS_ASSERT(k % kBlockK == 0 && ldx % 4 == 0 && (row_token == nullptr || !swiglu),
              "MoE row quantizer: width ", k, ", ld ", ldx);
    const std::int64_t warps = max_tiles * kMoeTileRows * (k / kBlockK);
    if (warps == 0) {
        return;
    }
    constexpr int kQuantThreads = 256;
    const std::int64_t blocks = (warps * kWarp + kQuantThreads - 1) / kQuantThreads;
    launch_kernel(moe_quantize_rows_kernel, static_cast<unsigned>(blocks), kQuantThreads, 0, stream,
                  x, ldx, k, row_token, swiglu, tiles, a8, as);
    DS_CUDA_LAUNCH(moe_quantize_rows, stream, max_tiles, " row tiles (bound) x ", k,
                   swiglu ? " (swiglu)" : "");
}

}  // namespace dsserve::backend::cuda
