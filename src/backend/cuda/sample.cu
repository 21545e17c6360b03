// Row argmax for greedy decoding. Only comparisons decide the result, never rounding: the
// candidates' order (larger value first, then lower index, NaNs out) is total, so the tree
// reduction gives the host's left-to-right answer whatever order the threads combine in.
#include <climits>
#include <cmath>
#include <cstdint>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/sample.h"
#include "core/error.h"

namespace dsserve::backend::cuda {
namespace {

constexpr int kWarp = 32;
constexpr unsigned kFullMask = 0xffffffffu;
// 16 warps of four float4 loads each in flight: a 129,280-wide row (505 KB) takes 16 rounds.
constexpr int kArgmaxThreads = 512;
constexpr int kArgmaxUnroll = 4;
constexpr int kArgmaxWarps = kArgmaxThreads / kWarp;

// Takes (v, i) if it comes before (best_v, best_i): a larger value, or an equal one at a lower
// index. A NaN fails both tests and is never taken. (-inf, INT_MAX) is "nothing yet": every
// number, -inf included, comes before it.
__device__ __forceinline__ void consider(float v, int i, float& best_v, int& best_i) {
    if (v > best_v || (v == best_v && i < best_i)) {
        best_v = v;
        best_i = i;
    }
}

__device__ __forceinline__ void consider4(float4 v, int i, float& best_v, int& best_i) {
    consider(v.x, i, best_v, best_i);
    consider(v.y, i + 1, best_v, best_i);
    consider(v.z, i + 2, best_v, best_i);
    consider(v.w, i + 3, best_v, best_i);
}

__global__ void __launch_bounds__(kArgmaxThreads)
    argmax_rows_kernel(const float* logits, std::int64_t ld, const std::int64_t* rows, int vocab,
                       std::int32_t* out) {
    pdl_enter();
    __shared__ float warp_v[kArgmaxWarps];
    __shared__ int warp_i[kArgmaxWarps];
    const int tid = static_cast<int>(threadIdx.x);
    const float* row = logits + rows[blockIdx.x] * ld;
    float best_v = -INFINITY;
    int best_i = INT_MAX;

    // Scalars up to the first 16-byte boundary, float4s, then the scalar tail.
    const auto misaligned = static_cast<int>((reinterpret_cast<std::uintptr_t>(row) % 16) / 4);
    const int head = min(vocab, misaligned == 0 ? 0 : 4 - misaligned);
    const int body = (vocab - head) / 4;
    const auto* row4 = reinterpret_cast<const float4*>(row + head);
    if (tid < head) {
        consider(row[tid], tid, best_v, best_i);
    }
    for (int base = tid; base < body; base += kArgmaxThreads * kArgmaxUnroll) {
        float4 v[kArgmaxUnroll];
#pragma unroll
        for (int u = 0; u < kArgmaxUnroll; ++u) {
            const int k = base + u * kArgmaxThreads;
            v[u] = k < body ? __ldg(row4 + k) : make_float4(NAN, NAN, NAN, NAN);
        }
#pragma unroll
        for (int u = 0; u < kArgmaxUnroll; ++u) {
            consider4(v[u], head + 4 * (base + u * kArgmaxThreads), best_v, best_i);
        }
    }
    for (int i = head + 4 * body + tid; i < vocab; i += kArgmaxThreads) {
        consider(row[i], i, best_v, best_i);
    }

    for (int o = kWarp / 2; o > 0; o /= 2) {
        const float other_v = __shfl_xor_sync(kFullMask, best_v, o);
        const int other_i = __shfl_xor_sync(kFullMask, best_i, o);
        consider(other_v, other_i, best_v, best_i);
    }
    const int lane = tid % kWarp, warp = tid / kWarp;
    if (lane == 0) {
        warp_v[warp] = best_v;
        warp_i[warp] = best_i;
    }
    __syncthreads();
    if (warp != 0) {
        return;
    }
    best_v = lane < kArgmaxWarps ? warp_v[lane] : -INFINITY;
    best_i = lane < kArgmaxWarps ? warp_i[lane] : INT_MAX;
    for (int o = kWarp / 2; o > 0; o /= 2) {
        const float other_v = __shfl_xor_sync(kFullMask, best_v, o);
        const int other_i = __shfl_xor_sync(kFullMask, best_i, o);
        consider(other_v, other_i, best_v, best_i);
    }
    if (lane == 0) {
        // The host keeps index 0 while nothing compares greater than it: a NaN there wins, and
        // so does index 0 of an all-NaN row.
        out[blockIdx.x] = isnan(row[0]) || best_i == INT_MAX ? 0 : best_i;
    }
}

}  // namespace

void launch_argmax_rows(const float* logits, std::int64_t ld, const std::int64_t* rows, int n,
                        int vocab, std::int32_t* out, cudaStream_t stream) {
    DS_ASSERT(vocab >= 1 && ld >= vocab && n >= 0, vocab, " ", ld, " ", n);
    if (n == 0) {
        return;
    }
    launch_kernel(argmax_rows_kernel, static_cast<unsigned>(n), kArgmaxThreads, 0, stream, logits,
                  ld, rows, vocab, out);
    DS_CUDA_LAUNCH(argmax_rows, stream, n, " rows of ", vocab, " (ld ", ld, ")");
}

}  // namespace dsserve::backend::cuda
