// Both kernels load their block's weights into registers first (each byte once, past L1), then
// stage the activations of up to kMaxTile token rows in shared memory and sweep the token rows in
// tiles against the widened weights; per-thread partial sums meet in shared memory in a fixed
// order, so results do not depend on timing.
//
// absorb_q reduces over the rows of W_UK_h: a block owns head h and a 128-column slice (one FP8
// scale column); warp w holds RPT consecutive rows, lane l the columns 4l .. 4l + 3, so a warp's
// load is one contiguous run of a row and one float4 of the query (a shared-memory broadcast)
// feeds 16 multiply-adds.
//
// absorb_out reduces along the rows of W_UV_h: a block owns head h and 32 of its rows over all
// lora columns; a thread holds 4 rows x 16 columns (lane = row quad + 8 x column group), so one
// float4 of o_lat feeds 16 multiply-adds and the 16 columns share one scale per row.
//
// Both load their weights before waiting for the kernel before them (launch.cuh): under
// programmatic launch that load overlaps the previous kernel's tail.
//
// FP8 values are widened without the conversion instructions (their throughput held the GEMV to
// about 60% of bandwidth): the float whose bits are the e4m3 sign, exponent and mantissa moved
// to their float positions is the e4m3 value times 2^-120 exactly, subnormals included (e4m3
// subnormals land on float subnormals; nothing here is compiled with flush-to-zero), and one
// multiply by scale x 2^120 gives the dequantized weight rounded once.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/mla_absorb.h"
#include "backend/cuda/streaming_loads.cuh"

namespace dsserve::backend::cuda {
namespace {

constexpr int kWarp = 32;
constexpr int kThreads = 256;
constexpr int kSliceCols = 128;    // absorb_q: columns per block, one FP8 scale column
constexpr int kOutRows = 32;       // absorb_out: rows of W_UV_h per block
constexpr int kOutCols = 16;       // absorb_out: columns per thread
constexpr int kMaxNope = 128;      // absorb_q: 8 warps x 16 rows
constexpr int kMaxLora = 512;      // absorb_out: 32 column groups x 16
constexpr int kMaxTile = 8;        // token rows per pass
constexpr int kSmemFloats = 8192;  // the larger of a token tile and its partial sums (32 KB)

struct AbsorbArgs {
    const unsigned char* w;
    const float* scale;
    int scale_ld;
    const float* x;
    float* y;
    int tokens, heads, nope, v, lora, qk;
};

__device__ __forceinline__ unsigned load_u32(const void* p) {
    unsigned v;
    asm("ld.global.nc.L1::no_allocate.u32 %0, [%1];" : "=r"(v) : "l"(p));
    return v;
}

// 32-bit words holding C consecutive weight values of one row.
template <WeightFormat F, int C>
__host__ __device__ constexpr int words_for() {
    return C * weight_bytes(F) / 4;
}

// The raw words of C values at p (aligned to their size), or zeros where !ok.
template <WeightFormat F, int C>
__device__ __forceinline__ void load_values(const unsigned char* p, bool ok,
                                            unsigned (&out)[words_for<F, C>()]) {
    constexpr int kWords = words_for<F, C>();
    if (!ok) {
#pragma unroll
        for (int i = 0; i < kWords; ++i) {
            out[i] = 0;
        }
        return;
    }
    if constexpr (kWords == 1) {
        out[0] = load_u32(p);
    } else if constexpr (kWords == 2) {
        const uint2 v = load_streaming_u64(p);
        out[0] = v.x;
        out[1] = v.y;
    } else {
        static_assert(kWords % 4 == 0);
#pragma unroll
        for (int i = 0; i < kWords / 4; ++i) {
            const uint4 v = load_streaming(p + 16 * i);
            out[4 * i] = v.x;
            out[4 * i + 1] = v.y;
            out[4 * i + 2] = v.z;
            out[4 * i + 3] = v.w;
        }
    }
}

// The C values as floats: BF16 and float32 exactly; e4m3 as value x 2^-120 (see the top).
template <WeightFormat F, int C>
__device__ __forceinline__ void widen(const unsigned (&in)[words_for<F, C>()], float (&out)[C]) {
#pragma unroll
    for (int k = 0; k < C; ++k) {
        if constexpr (F == WeightFormat::fp8_block) {
            const unsigned word = in[k / 4];
            const int b = k % 4;                        // little-endian: byte b is value k
            const unsigned top = word << (24 - 8 * b);  // the byte in bits 24..31
            const unsigned low = b == 3 ? word >> 4 : word << (20 - 8 * b);  // bits 0..6 at 20..26
            out[k] = __uint_as_float((top & 0x80000000u) | (low & 0x07f00000u));
        } else if constexpr (F == WeightFormat::bf16) {
            const unsigned word = in[k / 2];
            out[k] = __uint_as_float(k % 2 == 0 ? word << 16 : word & 0xffff0000u);
        } else {
            out[k] = __uint_as_float(in[k]);
        }
    }
}

// e4m3 values held as v x 2^-120 become fl(v x s): with s x 2^120 exact (s below 2^8), the one
// rounding of w x (s x 2^120) is that of v x s. A scale that large (a block maximum above
// 57,344) takes two multiplies, 2^120 first, which is exact.
template <int C>
__device__ __forceinline__ void dequantize(float (&w)[C], float s) {
    if (s < 0x1p7f) {
        const float f = s * 0x1p120f;
#pragma unroll
        for (int k = 0; k < C; ++k) {
            w[k] *= f;
        }
    } else {
#pragma unroll
        for (int k = 0; k < C; ++k) {
            w[k] = w[k] * 0x1p120f * s;
        }
    }
}

template <WeightFormat F, int C>
__device__ __forceinline__ void weights_of(const unsigned (&raw)[words_for<F, C>()], float s,
                                           float (&w)[C]) {
    widen<F, C>(raw, w);
    if constexpr (F == WeightFormat::fp8_block) {
        dequantize<C>(w, s);
    }
}

// q_lat[t, h lora + j] = sum_d q[t, h qk + d] W[h (nope + v) + d][j]. Grid: (lora / 128 slices,
// heads); ceil(nope / RPT) warps.
template <WeightFormat F, int RPT, int TT>
__global__ void __launch_bounds__(kThreads, 2) absorb_q_kernel(AbsorbArgs a) {
    pdl_allow_next();  // the wait follows the weights' loads, which no kernel writes
    constexpr int kWords = words_for<F, 4>();
    __shared__ __align__(16) float smem[kSmemFloats];
    const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
    const int warps = static_cast<int>(blockDim.x) / kWarp;
    const int h = static_cast<int>(blockIdx.y);
    const int col = static_cast<int>(blockIdx.x) * kSliceCols + lane * 4;
    const bool col_ok = col < a.lora;
    const int d0 = warp * RPT;
    const std::int64_t row0 = static_cast<std::int64_t>(h) * (a.nope + a.v) + d0;
    const std::int64_t row_bytes = static_cast<std::int64_t>(a.lora) * weight_bytes(F);

    unsigned raw[RPT][kWords];
    float scale[RPT];
#pragma unroll
    for (int r = 0; r < RPT; ++r) {
        const bool ok = col_ok && d0 + r < a.nope;
        load_values<F, 4>(a.w + (row0 + r) * row_bytes + col * weight_bytes(F), ok, raw[r]);
        scale[r] = 1.0f;
        if constexpr (F == WeightFormat::fp8_block) {
            scale[r] = ok ? __ldg(a.scale + (row0 + r) / 128 * a.scale_ld + blockIdx.x) : 0.0f;
        }
    }

    // The query tile: rows of `stride` floats, zeros past nope and past the last token, so that
    // every value the products read is written.
    const int stride = warps * RPT;
    const std::int64_t ldx = static_cast<std::int64_t>(a.heads) * a.qk;
    const float* x = a.x + static_cast<std::int64_t>(h) * a.qk;
    auto stage = [&](int t0) {
        for (int i = static_cast<int>(threadIdx.x); i < TT * stride;
             i += static_cast<int>(blockDim.x)) {
            const int t = t0 + i / stride, d = i % stride;
            smem[i] = t < a.tokens && d < a.nope ? x[t * ldx + d] : 0.0f;
        }
    };
    pdl_wait();
    stage(0);
    float w[RPT][4];
#pragma unroll
    for (int r = 0; r < RPT; ++r) {
        weights_of<F, 4>(raw[r], scale[r], w[r]);
    }
    __syncthreads();

    float* y = a.y + static_cast<std::int64_t>(h) * a.lora;
    const std::int64_t ldy = static_cast<std::int64_t>(a.heads) * a.lora;
    for (int t0 = 0;;) {
        float acc[TT][4] = {};
#pragma unroll
        for (int k = 0; k < RPT; k += 4) {
#pragma unroll
            for (int i = 0; i < TT; ++i) {
                const float4 q = *reinterpret_cast<const float4*>(smem + i * stride + d0 + k);
#pragma unroll
                for (int c = 0; c < 4; ++c) {
                    float s = acc[i][c];
                    s = fmaf(q.x, w[k][c], s);
                    s = fmaf(q.y, w[k + 1][c], s);
                    s = fmaf(q.z, w[k + 2][c], s);
                    acc[i][c] = fmaf(q.w, w[k + 3][c], s);
                }
            }
        }
        __syncthreads();  // the partial sums overwrite the query tile
#pragma unroll
        for (int i = 0; i < TT; ++i) {
            *reinterpret_cast<float4*>(smem + (i * warps + warp) * kSliceCols + lane * 4) =
                make_float4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]);
        }
        __syncthreads();
        for (int o = static_cast<int>(threadIdx.x); o < TT * kSliceCols;
             o += static_cast<int>(blockDim.x)) {
            const int i = o / kSliceCols, c = o % kSliceCols;
            const int t = t0 + i, j = static_cast<int>(blockIdx.x) * kSliceCols + c;
            if (t < a.tokens && j < a.lora) {
                float sum = 0.0f;
                for (int from = 0; from < warps; ++from) {
                    sum += smem[(i * warps + from) * kSliceCols + c];
                }
                y[t * ldy + j] = sum;
            }
        }
        t0 += TT;
        if (t0 >= a.tokens) {
            break;
        }
        __syncthreads();  // the next query tile overwrites the partial sums
        stage(t0);
        __syncthreads();
    }
}

// out[t, h v + d] = sum_j o_lat[t, h lora + j] W[h (nope + v) + nope + d][j]. Grid:
// (ceil(v / 32), heads), kThreads threads.
template <WeightFormat F, int TT>
__global__ void __launch_bounds__(kThreads, 2) absorb_out_kernel(AbsorbArgs a) {
    pdl_allow_next();  // the wait follows the weights' loads, which no kernel writes
    constexpr int kWords = words_for<F, kOutCols>();
    constexpr int kGroups = kThreads / 8;  // column groups: 4 per warp
    static_assert(kGroups * kOutCols == kMaxLora);
    __shared__ __align__(16) float smem[kSmemFloats];
    const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
    const int quad = lane % 8, group = warp * 4 + lane / 8;
    const int col = group * kOutCols;
    const bool col_ok = col < a.lora;
    const int h = static_cast<int>(blockIdx.y);
    const int d0 = static_cast<int>(blockIdx.x) * kOutRows + quad * 4;
    const std::int64_t row0 = static_cast<std::int64_t>(h) * (a.nope + a.v) + a.nope + d0;
    const std::int64_t row_bytes = static_cast<std::int64_t>(a.lora) * weight_bytes(F);

    unsigned raw[4][kWords];
    float scale[4];
#pragma unroll
    for (int r = 0; r < 4; ++r) {
        const bool ok = col_ok && d0 + r < a.v;
        load_values<F, kOutCols>(a.w + (row0 + r) * row_bytes + col * weight_bytes(F), ok, raw[r]);
        scale[r] = 1.0f;
        if constexpr (F == WeightFormat::fp8_block) {
            scale[r] = ok ? __ldg(a.scale + (row0 + r) / 128 * a.scale_ld + col / 128) : 0.0f;
        }
    }

    // The o_lat tile; every 32 columns are followed by 4 floats of padding, so that the four
    // column groups of a warp read distinct banks. Only columns below lora are read, all staged.
    const int stride = a.lora + a.lora / 32 * 4;
    const std::int64_t ldx = static_cast<std::int64_t>(a.heads) * a.lora;
    const float* x = a.x + static_cast<std::int64_t>(h) * a.lora;
    auto stage = [&](int t0) {
        for (int i = static_cast<int>(threadIdx.x); i < TT * a.lora;
             i += static_cast<int>(blockDim.x)) {
            const int row = i / a.lora, j = i % a.lora, t = t0 + row;
            smem[row * stride + j + j / 32 * 4] = t < a.tokens ? x[t * ldx + j] : 0.0f;
        }
    };
    pdl_wait();
    stage(0);
    float w[4][kOutCols];
#pragma unroll
    for (int r = 0; r < 4; ++r) {
        weights_of<F, kOutCols>(raw[r], scale[r], w[r]);
    }
    __syncthreads();

    const int groups = (a.lora + kOutCols - 1) / kOutCols;
    const int base = col + col / 32 * 4;  // a group's 16 columns lie within one run of 32
    float* y = a.y + static_cast<std::int64_t>(h) * a.v;
    const std::int64_t ldy = static_cast<std::int64_t>(a.heads) * a.v;
    for (int t0 = 0;;) {
        float acc[TT][4] = {};
        if (col_ok) {
#pragma unroll
            for (int m = 0; m < kOutCols; m += 4) {
#pragma unroll
                for (int i = 0; i < TT; ++i) {
                    const float4 o = *reinterpret_cast<const float4*>(smem + i * stride + base + m);
#pragma unroll
                    for (int r = 0; r < 4; ++r) {
                        float s = acc[i][r];
                        s = fmaf(o.x, w[r][m], s);
                        s = fmaf(o.y, w[r][m + 1], s);
                        s = fmaf(o.z, w[r][m + 2], s);
                        acc[i][r] = fmaf(o.w, w[r][m + 3], s);
                    }
                }
            }
        }
        __syncthreads();  // the partial sums overwrite the o_lat tile
#pragma unroll
        for (int i = 0; i < TT; ++i) {
            *reinterpret_cast<float4*>(smem + (i * kGroups + group) * kOutRows + quad * 4) =
                make_float4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]);
        }
        __syncthreads();
        for (int o = static_cast<int>(threadIdx.x); o < TT * kOutRows;
             o += static_cast<int>(blockDim.x)) {
            const int i = o / kOutRows, row = o % kOutRows;
            const int t = t0 + i, d = static_cast<int>(blockIdx.x) * kOutRows + row;
            if (t < a.tokens && d < a.v) {
                float sum = 0.0f;
                for (int g = 0; g < groups; ++g) {
                    sum += smem[(i * kGroups + g) * kOutRows + row];
                }
                y[t * ldy + d] = sum;
            }
        }
        t0 += TT;
        if (t0 >= a.tokens) {
            break;
        }
        __syncthreads();  // the next o_lat tile overwrites the partial sums
        stage(t0);
        __syncthreads();
    }
}

// Token rows per pass: the fewest that cover the launch, up to kMaxTile.
int tile_for(int tokens) {
    return tokens >= 5 ? 8 : tokens >= 3 ? 4 : tokens;
}

template <WeightFormat F, int RPT>
void launch_q_tile(int tile, dim3 grid, dim3 block, const AbsorbArgs& args, cudaStream_t stream) {
    switch (tile) {
        case 1:
            launch_kernel(absorb_q_kernel<F, RPT, 1>, grid, block, 0, stream, args);
            break;
        case 2:
            launch_kernel(absorb_q_kernel<F, RPT, 2>, grid, block, 0, stream, args);
            break;
        case 4:
            launch_kernel(absorb_q_kernel<F, RPT, 4>, grid, block, 0, stream, args);
            break;
        default:
            launch_kernel(absorb_q_kernel<F, RPT, kMaxTile>, grid, block, 0, stream, args);
            break;
    }
}

template <WeightFormat F>
void launch_q_format(int nope, int tile, dim3 grid, const AbsorbArgs& args, cudaStream_t stream) {
    // Four rows per warp for narrow heads, so that the block keeps several warps.
    if (nope <= 32) {
        launch_q_tile<F, 4>(tile, grid, dim3((nope + 3) / 4 * kWarp), args, stream);
    } else {
        launch_q_tile<F, 16>(tile, grid, dim3((nope + 15) / 16 * kWarp), args, stream);
    }
}

template <WeightFormat F>
void launch_out_format(int tile, dim3 grid, const AbsorbArgs& args, cudaStream_t stream) {
    const dim3 block(kThreads);
    switch (tile) {
        case 1:
            launch_kernel(absorb_out_kernel<F, 1>, grid, block, 0, stream, args);
            break;
        case 2:
            launch_kernel(absorb_out_kernel<F, 2>, grid, block, 0, stream, args);
            break;
        case 4:
            launch_kernel(absorb_out_kernel<F, 4>, grid, block, 0, stream, args);
            break;
        default:
            launch_kernel(absorb_out_kernel<F, kMaxTile>, grid, block, 0, stream, args);
            break;
    }
}

AbsorbArgs args_of(const AbsorbWeight& w, const AbsorbShape& s, const float* x, float* y) {
    AbsorbArgs a{};
    a.w = static_cast<const unsigned char*>(w.w);
    a.scale = w.scale;
    a.scale_ld = w.scale_ld;
    a.x = x;
    a.y = y;
    a.tokens = s.tokens;
    a.heads = s.heads;
    a.nope = s.nope;
    a.v = s.v;
    a.lora = s.lora;
    a.qk = s.nope + s.rope;
    return a;
}

}  // namespace

bool absorb_supports(WeightFormat format, const AbsorbShape& s) {
    return s.heads >= 1 && s.heads <= 65535 && s.nope >= 1 && s.nope <= kMaxNope && s.rope >= 0 &&
           s.v >= 1 && s.lora >= 1 && s.lora <= kMaxLora && s.lora % kOutCols == 0 &&
           (format != WeightFormat::fp8_block || s.lora % kSliceCols == 0);
}

void launch_absorb_q(const AbsorbWeight& w, const AbsorbShape& shape, const float* q, float* q_lat,
                     cudaStream_t stream) {
    DS_ASSERT(absorb_supports(w.format, shape), "absorb_q: nope ", shape.nope, ", lora ",
              shape.lora);
    if (shape.tokens == 0) {
        return;
    }
    const AbsorbArgs args = args_of(w, shape, q, q_lat);
    const int tile = tile_for(shape.tokens);
    const dim3 grid(static_cast<unsigned>((shape.lora + kSliceCols - 1) / kSliceCols),
                    static_cast<unsigned>(shape.heads));
    switch (w.format) {
        case WeightFormat::fp8_block:
            launch_q_format<WeightFormat::fp8_block>(shape.nope, tile, grid, args, stream);
            break;
        case WeightFormat::bf16:
            launch_q_format<WeightFormat::bf16>(shape.nope, tile, grid, args, stream);
            break;
        case WeightFormat::f32:
            launch_q_format<WeightFormat::f32>(shape.nope, tile, grid, args, stream);
            break;
    }
    DS_CUDA_LAUNCH(absorb_q, stream, shape.tokens, " tokens x ", shape.heads, " heads, nope ",
                   shape.nope, " lora ", shape.lora, ", format ", static_cast<int>(w.format));
}

void launch_absorb_out(const AbsorbWeight& w, const AbsorbShape& shape, const float* o_lat,
                       float* out, cudaStream_t stream) {
    DS_ASSERT(absorb_supports(w.format, shape), "absorb_out: v ", shape.v, ", lora ", shape.lora);
    if (shape.tokens == 0) {
        return;
    }
    const AbsorbArgs args = args_of(w, shape, o_lat, out);
    const int tile = tile_for(shape.tokens);
    const dim3 grid(static_cast<unsigned>((shape.v + kOutRows - 1) / kOutRows),
                    static_cast<unsigned>(shape.heads));
    switch (w.format) {
        case WeightFormat::fp8_block:
            launch_out_format<WeightFormat::fp8_block>(tile, grid, args, stream);
            break;
        case WeightFormat::bf16:
            launch_out_format<WeightFormat::bf16>(tile, grid, args, stream);
            break;
        case WeightFormat::f32:
            launch_out_format<WeightFormat::f32>(tile, grid, args, stream);
            break;
    }
    DS_CUDA_LAUNCH(absorb_out, stream, shape.tokens, " tokens x ", shape.heads, " heads, v ",
                   shape.v, " lora ", shape.lora, ", format ", static_cast<int>(w.format));
}

}  // namespace dsserve::backend::cuda
