// The tiled FP8 expert GEMM (see moe_gemm.h).
//
// A block is one warpgroup (4 warps) and owns a 64 x 128 output tile, which Hopper's warpgroup
// MMA (wgmma, m64n128k32) computes from shared memory directly. Each 128-deep slice of k is one
// scale block of both operands: 8 KB of activations and 16 KB of weights, brought to shared
// memory by cp.async kStages slices ahead, their 16-byte chunks XOR-swizzled by row as the
// wgmma's 128-byte swizzle mode reads them. A slice's four k32 products run back to back on the
// tensor cores into partial sums, which are then scaled into float32 accumulators: the tensor
// cores keep fewer bits than float32 when they add FP8 products, so sums leave them every 128 k
// (DeepSeek-V3's promotion interval; cuBLASLt's FP8 path rounds alike). Blocks run the column
// tiles of one row tile next to each other, so that a row tile's activations are read from HBM
// once, and an expert's row tiles follow one another while its weights are in L2. Three blocks
// share an SM, so that one's loads and scaling overlap another's products.
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
constexpr int kStages = 3;
constexpr int kBlocksPerSm = 3;  // 72 KB of shared memory and at most 170 registers a thread
constexpr int kSmemBytes = kStages * kStageBytes + 1024;  // + alignment to 1024 bytes

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

// Shared-memory matrix descriptor (wgmma) of a slice of 128-byte rows laid out as `swizzled`
// places them, which is the hardware's 128-byte swizzle: at a 1024-byte-aligned address, groups
// of 8 rows 1024 bytes apart. Adding 2 moves it 32 bytes along k.
__device__ __forceinline__ std::uint64_t slice_desc(unsigned addr) {
    return static_cast<std::uint64_t>((addr & 0x3FFFF) >> 4) | (std::uint64_t{1} << 16) |
           (std::uint64_t{1024 >> 4} << 32) | (std::uint64_t{1} << 62);
}

// d (+)= a b for a 64 x 128 x 32 block-FP8 product on the warpgroup's tensor cores, a and b in
// shared memory (slice_desc); accumulate false starts from zero. Lane l of warp w holds
// rows 16 w + l / 4 and 16 w + l / 4 + 8, columns 8 i + 2 (l % 4) + {0, 1}, as d[4 i ..] for
// i < 16 (the mma.m16n8 layout, repeated across the columns).
__device__ __forceinline__ void wgmma_e4m3_64x128(float d[64], std::uint64_t a, std::uint64_t b,
                                                  bool accumulate) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k32.f32.e4m3.e4m3 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, "
        "%19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, "
        "%37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, "
        "%55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p, 1, 1;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]),
          "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]),
          "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]),
          "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]),
          "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]),
          "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]),
          "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]),
          "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
          "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]),
          "+f"(d[63])
        : "l"(a), "l"(b), "r"(static_cast<int>(accumulate)));
}

// Keeps the compiler from moving reads of wgmma results above the wait for them.
__device__ __forceinline__ void pin(float d[64]) {
#pragma unroll
    for (int i = 0; i < 64; ++i) {
        asm volatile("" : "+f"(d[i])::"memory");
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

    extern __shared__ __align__(1024) unsigned char smem[];
    const unsigned base = (static_cast<unsigned>(__cvta_generic_to_shared(smem)) + 1023u) & ~1023u;
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
    const int r0 = warp * 16 + lane / 4, r1 = r0 + 8;
    float acc[64] = {}, part[64] = {};
    for (int kb = 0; kb < kblocks; ++kb) {
        wait_async<kStages - 2>();
        // The slice was written through the generic proxy; the tensor cores read it through the
        // async one.
        asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
        __syncthreads();
        if (kb + kStages - 1 < kblocks) {
            load_stage(kb + kStages - 1);
        }
        commit_async();
        const unsigned sa = base + (kb % kStages) * kStageBytes;
        const std::uint64_t da = slice_desc(sa), db = slice_desc(sa + kABytes);
        const float ws = wscale[kb];
        const float s0 = as[(row0 + r0) * kblocks + kb] * ws;
        const float s1 = as[(row0 + r1) * kblocks + kb] * ws;
        pin(part);
        asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
#pragma unroll
        for (int ks = 0; ks < kBlockK / 32; ++ks) {
            wgmma_e4m3_64x128(part, da + 2 * ks, db + 2 * ks, ks > 0);
        }
        asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
        asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
        pin(part);
#pragma unroll
        for (int i = 0; i < 16; ++i) {
            acc[4 * i] += part[4 * i] * s0;
            acc[4 * i + 1] += part[4 * i + 1] * s0;
            acc[4 * i + 2] += part[4 * i + 2] * s1;
            acc[4 * i + 3] += part[4 * i + 3] * s1;
        }
    }
    wait_async<0>();

    float* out = y + row0 * ldy + seg * w.n + col0 + 2 * (lane % 4);
#pragma unroll
    for (int i = 0; i < 16; ++i) {
        *reinterpret_cast<float2*>(out + r0 * ldy + 8 * i) =
            make_float2(acc[4 * i], acc[4 * i + 1]);
        *reinterpret_cast<float2*>(out + r1 * ldy + 8 * i) =
            make_float2(acc[4 * i + 2], acc[4 * i + 3]);
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
