// A group of warps owns R consecutive output columns (weight rows) and sweeps their k values in
// 16-byte chunks, lanes side by side so that a warp's loads are 512 contiguous bytes; the
// activation rows (up to MT at a time) are read once per chunk for all R columns. Weights are
// loaded past L1 (they are read once), activations through it (every warp reads them).
#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <algorithm>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/fp8_quant.cuh"
#include "backend/cuda/gemv.h"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/streaming_loads.cuh"

namespace dsserve::backend::cuda {
namespace {

constexpr int kWarp = 32;
constexpr int kWarps = 8;  // per block

struct GemvArgs {
    GemvInput in;
    GemvSegment seg[kGemvMaxSegments];
    int seg_start[kGemvMaxSegments + 1];
    int num_segments;
    int m;  // plain form
    GemvGrouped grouped;
    bool is_grouped;
};

// Weight values in one 16-byte load.
__host__ __device__ constexpr int elems_per_chunk(WeightFormat f) {
    return 16 / weight_bytes(f);
}

// 16-byte loads each lane keeps in flight: eight per column group of R columns, so that two
// blocks per SM (the register budget the launch bounds set) cover the memory latency.
__host__ __device__ constexpr int loads_per_column(int r) {
    return r == 1 ? 8 : r == 2 ? 4 : 2;
}

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = kWarp / 2; o > 0; o /= 2) {
        v += __shfl_xor_sync(0xffffffffu, v, o);
    }
    return v;
}

// Four weight values from one 32-bit word of the chunk (fp8: 4 values; bf16: 2 words make 4).
template <WeightFormat F>
__device__ __forceinline__ void widen4(const uint4& v, int quarter, float out[4]) {
    const unsigned words[4] = {v.x, v.y, v.z, v.w};
    if constexpr (F == WeightFormat::fp8_block) {
        const unsigned w = words[quarter];
        const __half2_raw lo =
            __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(w & 0xffffu), __NV_E4M3);
        const __half2_raw hi =
            __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(w >> 16), __NV_E4M3);
        const float2 a = __half22float2(__half2(lo)), b = __half22float2(__half2(hi));
        out[0] = a.x;
        out[1] = a.y;
        out[2] = b.x;
        out[3] = b.y;
    } else if constexpr (F == WeightFormat::bf16) {
        const unsigned w0 = words[2 * quarter], w1 = words[2 * quarter + 1];
        out[0] = __uint_as_float(w0 << 16);
        out[1] = __uint_as_float(w0 & 0xffff0000u);
        out[2] = __uint_as_float(w1 << 16);
        out[3] = __uint_as_float(w1 & 0xffff0000u);
    } else {
        out[0] = __uint_as_float(words[0]);
        out[1] = __uint_as_float(words[1]);
        out[2] = __uint_as_float(words[2]);
        out[3] = __uint_as_float(words[3]);
    }
}

__device__ __forceinline__ void prefetch_l2(const void* p) {
    asm volatile("prefetch.global.L2 [%0];" ::"l"(p));
}

__device__ __forceinline__ float4 load_input(const GemvInput& in, const float* row, int col) {
    const float4 g = *reinterpret_cast<const float4*>(row + col);
    if (!in.swiglu) {
        return g;
    }
    const float4 u = *reinterpret_cast<const float4*>(row + in.k + col);
    return make_float4(swiglu_value(g.x, u.x), swiglu_value(g.y, u.y), swiglu_value(g.z, u.z),
                       swiglu_value(g.w, u.w));
}

// Block layout: the 8 warps form 8 / W groups of W warps; a group owns R consecutive output
// columns and its W warps split their k range (warp-interleaved 512-byte runs), so that narrow
// products (a 256-column router, the 2,240 columns of q_a + kv_a + wk) still fill the GPU and
// long rows have enough loads in flight. The W partial sums meet in shared memory in a fixed
// order: results do not depend on timing.
template <WeightFormat F, int R, int MT>
__global__ void __launch_bounds__(kWarps* kWarp, 2) gemv_kernel(GemvArgs a, int w_split) {
    pdl_allow_next();
    constexpr int E = elems_per_chunk(F);
    constexpr int kBytes = 16;
    constexpr int U = loads_per_column(R);
    __shared__ float partial[kWarps][R * MT];
    const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
    const int group = warp / w_split, sub = warp % w_split;
    const int col0 = (blockIdx.x * (kWarps / w_split) + group) * R;
    const int total = a.seg_start[a.num_segments];
    int rows_begin = 0, rows_end = a.m, expert = 0;
    const std::int32_t* x_row = nullptr;
    if (a.is_grouped) {
        pdl_wait();  // the expert list comes from the kernels before
        const int slot = blockIdx.y;
        if (slot >= *a.grouped.count) {
            return;  // the whole block
        }
        expert = a.grouped.expert[slot];
        rows_begin = a.grouped.start[slot];
        rows_end = a.grouped.start[slot + 1];
        x_row = a.grouped.x_row;
    }
    const int k = a.in.k;
    const unsigned char* wrow[R];
    const float* srow[R];
    float* ycol[R];
    int ldy[R];
    bool valid[R];
#pragma unroll
    for (int r = 0; r < R; ++r) {
        const int c = col0 + r;
        valid[r] = c < total;
        int s = 0;
        while (s + 1 < a.num_segments && c >= a.seg_start[s + 1]) {
            ++s;
        }
        const int local = valid[r] ? c - a.seg_start[s] : 0;
        const void* w = a.seg[s].w;
        const float* scale = a.seg[s].scale;
        if (a.is_grouped) {
            w = a.grouped.table[expert * a.num_segments + s];
            scale = F == WeightFormat::fp8_block ? a.grouped.scales[expert * a.num_segments + s]
                                                 : nullptr;
        }
        wrow[r] = static_cast<const unsigned char*>(w) +
                  static_cast<std::int64_t>(local) * k * (kBytes / E);
        srow[r] =
            F == WeightFormat::fp8_block ? scale + (local / 128) * a.seg[s].scale_ld : nullptr;
        ycol[r] = a.seg[s].y + local;
        ldy[r] = a.seg[s].ldy;
    }
    const int chunks = k / E;
    const int stride = w_split * kWarp;
    if (!a.is_grouped) {
        // The plain form's first weights head for L2 while the kernel before finishes.
#pragma unroll
        for (int u = 0; u < U; ++u) {
            const int c = sub * kWarp + lane + u * stride;
#pragma unroll
            for (int r = 0; r < R; ++r) {
                if (valid[r] && c < chunks) {
                    prefetch_l2(wrow[r] + static_cast<std::int64_t>(c) * kBytes);
                }
            }
        }
        pdl_wait();
    }
    for (int m0 = rows_begin; m0 < rows_end; m0 += MT) {
        const int mt = min(MT, rows_end - m0);
        const float* xr[MT];
#pragma unroll
        for (int i = 0; i < MT; ++i) {
            const int row = m0 + min(i, mt - 1);
            xr[i] = a.in.x + static_cast<std::int64_t>(x_row ? x_row[row] : row) * a.in.ldx;
        }
        float acc[R][MT] = {};
        for (int c0 = sub * kWarp + lane; c0 < chunks; c0 += stride * U) {
            uint4 wv[U][R];
            float sv[U][R];
#pragma unroll
            for (int u = 0; u < U; ++u) {
                const int c = c0 + u * stride;
#pragma unroll
                for (int r = 0; r < R; ++r) {
                    const bool ok = valid[r] && c < chunks;
                    wv[u][r] = ok ? load_streaming(wrow[r] + static_cast<std::int64_t>(c) * kBytes)
                                  : make_uint4(0, 0, 0, 0);
                    if constexpr (F == WeightFormat::fp8_block) {
                        sv[u][r] = ok ? __ldg(srow[r] + c * E / 128) : 0.0f;
                    } else {
                        sv[u][r] = 1.0f;
                    }
                }
            }
#pragma unroll
            for (int u = 0; u < U; ++u) {
                const int c = c0 + u * stride;
                if (c >= chunks) {
                    break;
                }
#pragma unroll
                for (int q = 0; q < E / 4; ++q) {
                    float4 xv[MT];
#pragma unroll
                    for (int i = 0; i < MT; ++i) {
                        xv[i] = i < mt ? load_input(a.in, xr[i], c * E + q * 4)
                                       : make_float4(0, 0, 0, 0);
                    }
#pragma unroll
                    for (int r = 0; r < R; ++r) {
                        float w[4];
                        widen4<F>(wv[u][r], q, w);
#pragma unroll
                        for (int j = 0; j < 4; ++j) {
                            w[j] *= sv[u][r];
                        }
#pragma unroll
                        for (int i = 0; i < MT; ++i) {
                            acc[r][i] +=
                                w[0] * xv[i].x + w[1] * xv[i].y + w[2] * xv[i].z + w[3] * xv[i].w;
                        }
                    }
                }
            }
        }
#pragma unroll
        for (int r = 0; r < R; ++r) {
#pragma unroll
            for (int i = 0; i < MT; ++i) {
                const float v = warp_sum(acc[r][i]);
                if (lane == 0) {
                    partial[warp][r * MT + i] = v;
                }
            }
        }
        __syncthreads();
        if (sub == 0 && lane < R * MT) {
            const int r = lane / MT, i = lane % MT;
            float v = 0.0f;
            for (int w = 0; w < w_split; ++w) {
                v += partial[warp + w][lane];
            }
            if (valid[r] && i < mt) {
                ycol[r][static_cast<std::int64_t>(m0 + i) * ldy[r]] = v;
            }
        }
        __syncthreads();  // partial is reused by the next row tile
    }
}

template <WeightFormat F, int R>
void launch_tile(int mt, dim3 grid, const GemvArgs& args, int w_split, cudaStream_t stream) {
    const dim3 block(kWarps * kWarp);
    if (mt <= 1) {
        launch_kernel(gemv_kernel<F, R, 1>, grid, block, 0, stream, args, w_split);
    } else if (mt <= 2) {
        launch_kernel(gemv_kernel<F, R, 2>, grid, block, 0, stream, args, w_split);
    } else if (mt <= 4) {
        launch_kernel(gemv_kernel<F, R, 4>, grid, block, 0, stream, args, w_split);
    } else {
        launch_kernel(gemv_kernel<F, R, 8>, grid, block, 0, stream, args, w_split);
    }
}

template <WeightFormat F>
void launch_format(int r, int mt, dim3 grid, const GemvArgs& args, int w_split,
                   cudaStream_t stream) {
    if (r == 4) {
        launch_tile<F, 4>(std::min(mt, 4), grid, args, w_split, stream);
    } else if (r == 2) {
        launch_tile<F, 2>(mt, grid, args, w_split, stream);
    } else {
        launch_tile<F, 1>(mt, grid, args, w_split, stream);
    }
}

void launch(WeightFormat format, const GemvInput& in, const GemvSegment* segments, int num_segments,
            int m, const GemvGrouped* grouped, int rows_hint, cudaStream_t stream) {
    DS_ASSERT(num_segments >= 1 && num_segments <= kGemvMaxSegments, num_segments);
    DS_ASSERT(gemv_supports(format, in.k), "GEMV width ", in.k);
    GemvArgs args{};
    args.in = in;
    args.num_segments = num_segments;
    args.m = m;
    args.seg_start[0] = 0;
    for (int s = 0; s < num_segments; ++s) {
        args.seg[s] = segments[s];
        args.seg_start[s + 1] = args.seg_start[s] + segments[s].n;
    }
    if (grouped != nullptr) {
        args.grouped = *grouped;
        args.is_grouped = true;
    }
    const int total = args.seg_start[num_segments];
    const int slots = grouped != nullptr ? grouped->max_slots : 1;
    if (total == 0 || slots == 0 || (grouped == nullptr && m == 0)) {
        return;
    }
    // Warps per column group: as many as keep at least U chunks per lane (k split W ways).
    auto split_for = [&](int r) {
        const int per_warp = in.k / elems_per_chunk(format) / (kWarp * loads_per_column(r));
        int w = 1;
        while (w < kWarps && per_warp >= 2 * w) {
            w *= 2;
        }
        return w;
    };
    // Four columns per warp and whole rows per warp where the output is wide enough to give
    // every SM four blocks; narrower outputs split k over more warps first (measured: the
    // split costs a wide product like the head 15%, and gains a 7,168-column one 25%), then
    // take fewer columns per group.
    constexpr int kBlocksWanted = 4 * 132;
    auto blocks = [&](int r, int w) {
        const int per_block = kWarps / w * r;
        return static_cast<std::int64_t>((total + per_block - 1) / per_block) * slots;
    };
    int r = rows_hint > 4 ? 2 : 4;  // 4 x 8 accumulators spill registers
    int w_split = 1;
    while (blocks(r, w_split) < kBlocksWanted && w_split < kWarps && w_split < split_for(r) * 2) {
        w_split *= 2;
    }
    while (blocks(r, w_split) < kBlocksWanted && r > 1) {
        r /= 2;
    }
    const int per_block = kWarps / w_split * r;
    const dim3 grid(static_cast<unsigned>((total + per_block - 1) / per_block),
                    static_cast<unsigned>(slots));
    switch (format) {
        case WeightFormat::fp8_block:
            launch_format<WeightFormat::fp8_block>(r, rows_hint, grid, args, w_split, stream);
            break;
        case WeightFormat::bf16:
            launch_format<WeightFormat::bf16>(r, rows_hint, grid, args, w_split, stream);
            break;
        case WeightFormat::f32:
            launch_format<WeightFormat::f32>(r, rows_hint, grid, args, w_split, stream);
            break;
    }
    DS_CUDA_LAUNCH(gemv, stream, grouped != nullptr ? "grouped " : "", "[", m, ", ", in.k, "] x ",
                   total, " columns in ", num_segments, " weights, format ",
                   static_cast<int>(format), ", ", slots, " slots");
}

}  // namespace

bool gemv_supports(WeightFormat format, int k) {
    return k > 0 && k % elems_per_chunk(format) == 0;
}

void launch_gemv(WeightFormat format, const GemvInput& in, const GemvSegment* segments,
                 int num_segments, const GemvPlain& plain, cudaStream_t stream) {
    launch(format, in, segments, num_segments, plain.m, nullptr, plain.m, stream);
}

void launch_gemv_grouped(WeightFormat format, const GemvInput& in, const GemvSegment* segments,
                         int num_segments, const GemvGrouped& grouped, cudaStream_t stream) {
    launch(format, in, segments, num_segments, 0, &grouped, grouped.rows_per_slot, stream);
}

}  // namespace dsserve::backend::cuda
