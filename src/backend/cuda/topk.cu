// Top-k selections on the device, bit-exact with their host versions: the comparisons are the
// host's own (float order, ties to the lower index), so only inputs decide, never rounding. The
// one exception is the router's sigmoid: expf may differ from libm's by an ulp, which can flip
// two experts whose biased scores are within an ulp of each other.
#include <cmath>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/topk.h"
#include "core/error.h"

namespace dsserve::backend::cuda {
namespace {

constexpr int kWarp = 32;
constexpr unsigned kFullMask = 0xffffffffu;

// ---- Row top-k: a radix select per row ----------------------------------------------------
//
// Scores map to uint32 keys that order like the floats. Histogram passes over the key digits,
// most significant first, narrow down the key T of the top_k-th largest score and how many of
// the keys equal to T belong in (`want`): all keys above T are in, then the `want` lowest-index
// keys equal to T. A final pass writes the chosen positions in index order through a block-wide
// prefix sum, which leaves them sorted. The row is read from global memory on every pass (two to
// four of them); a decode step's few rows of at most 640 KB each stay in L2 between passes.

constexpr int kTopkThreads = 1024;
constexpr int kTopkWarps = kTopkThreads / kWarp;
// 11 + 11 + 10 bits: the first digit is the sign, the exponent and two mantissa bits, so one
// pass separates scores by magnitude, and three passes cover the key.
constexpr int kRadixBits = 11;
constexpr int kBins = 1 << kRadixBits;
constexpr int kBinsPerThread = kBins / kTopkThreads;
static_assert(kBins % kTopkThreads == 0);
// The final pass scans two counts per chunk of kTopkThreads positions packed into one word.
static_assert(kTopkThreads < (1 << 16));

// Larger float, larger key. -0.0 maps to +0.0's key, since the host compares them equal (tested
// on the bits: under flush-to-zero a float compare would merge denormals into zero too); NaNs
// land above +inf or below -inf, which keeps every count exact.
__device__ std::uint32_t order_key(float f) {
    std::uint32_t bits = __float_as_uint(f);
    bits = (bits << 1) == 0 ? 0u : bits;
    return (bits & 0x80000000u) != 0 ? ~bits : bits | 0x80000000u;
}

// Inclusive prefix sum over the block in thread order; `total` gets the block's sum.
// `warp_total` holds one word per warp. Every thread of the block must call it.
__device__ std::uint32_t block_inclusive_scan(std::uint32_t v, std::uint32_t* warp_total,
                                              std::uint32_t& total) {
    const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
    for (int o = 1; o < kWarp; o *= 2) {
        const std::uint32_t up = __shfl_up_sync(kFullMask, v, o);
        if (lane >= o) {
            v += up;
        }
    }
    __syncthreads();  // warp_total may still be read from the previous scan
    if (lane == kWarp - 1) {
        warp_total[warp] = v;
    }
    __syncthreads();
    if (warp == 0) {
        std::uint32_t w = lane < kTopkWarps ? warp_total[lane] : 0;
        for (int o = 1; o < kWarp; o *= 2) {
            const std::uint32_t up = __shfl_up_sync(kFullMask, w, o);
            if (lane >= o) {
                w += up;
            }
        }
        if (lane < kTopkWarps) {
            warp_total[lane] = w;
        }
    }
    __syncthreads();
    total = warp_total[kTopkWarps - 1];
    return v + (warp > 0 ? warp_total[warp - 1] : 0);
}

__global__ void __launch_bounds__(kTopkThreads)
    row_topk_kernel(const float* score, std::int64_t ld, const std::int32_t* count, int top_k,
                    std::int32_t* out) {
    pdl_enter();
    __shared__ std::uint32_t hist[kBins];
    __shared__ std::uint32_t warp_total[kTopkWarps];
    __shared__ std::uint32_t found_bin, found_above, found_count;
    const int tid = static_cast<int>(threadIdx.x);
    const float* row = score + static_cast<std::int64_t>(blockIdx.x) * ld;
    std::int32_t* dst = out + static_cast<std::int64_t>(blockIdx.x) * top_k;
    const int n = max(count[blockIdx.x], 0);
    if (n <= top_k) {
        for (int i = tid; i < top_k; i += kTopkThreads) {
            dst[i] = i < n ? i : -1;
        }
        return;
    }

    // The threshold key's digits found so far (`prefix`, under the mask `known`), and how many of
    // the keys that match them are still to take.
    std::uint32_t prefix = 0, known = 0;
    auto want = static_cast<std::uint32_t>(top_k);
    for (int high = 32; high > 0;) {
        const int width = min(kRadixBits, high);
        const int shift = high - width;
        const std::uint32_t digit_mask = (1u << width) - 1;
        high = shift;
        for (int b = tid; b < kBins; b += kTopkThreads) {
            hist[b] = 0;
        }
        __syncthreads();
        for (int i = tid; i < n; i += kTopkThreads) {
            const std::uint32_t key = order_key(row[i]);
            if ((key & known) == prefix) {
                atomicAdd(&hist[(key >> shift) & digit_mask], 1u);
            }
        }
        __syncthreads();
        // Threads own bins from the top down, so that the scan counts the keys above each
        // thread's bins; the one thread whose bins reach `want` finds the threshold's digit. The
        // keys matching `prefix` number at least `want`, so exactly one thread does.
        const int top = kBins - 1 - tid * kBinsPerThread;
        std::uint32_t mine = 0;
        for (int j = 0; j < kBinsPerThread; ++j) {
            mine += hist[top - j];
        }
        std::uint32_t total = 0;
        std::uint32_t above = block_inclusive_scan(mine, warp_total, total) - mine;
        if (above < want && want <= above + mine) {
            for (int j = 0; j < kBinsPerThread; ++j) {
                const std::uint32_t c = hist[top - j];
                if (want <= above + c) {
                    found_bin = static_cast<std::uint32_t>(top - j);
                    found_above = above;
                    found_count = c;
                    break;
                }
                above += c;
            }
        }
        __syncthreads();
        prefix |= found_bin << shift;
        known |= digit_mask << shift;
        want -= found_above;
        if (found_count == want) {
            break;  // every key with this prefix is taken, whatever its lower digits
        }
    }

    // Keys compare under `known` only: after an early stop the lower digits do not matter.
    std::uint32_t gt_seen = 0, eq_seen = 0;
    for (int base = 0; base < n; base += kTopkThreads) {
        const int i = base + tid;
        std::uint32_t gt = 0, eq = 0;
        if (i < n) {
            const std::uint32_t key = order_key(row[i]) & known;
            gt = key > prefix ? 1 : 0;
            eq = key == prefix ? 1 : 0;
        }
        const std::uint32_t flags = gt << 16 | eq;
        std::uint32_t total = 0;
        const std::uint32_t before = block_inclusive_scan(flags, warp_total, total) - flags;
        const std::uint32_t eq_rank = eq_seen + (before & 0xffffu);
        if (gt != 0 || (eq != 0 && eq_rank < want)) {
            // The chosen keys before this one: every greater key, and equal ones up to `want`.
            const std::uint32_t pos = gt_seen + (before >> 16) + min(eq_rank, want);
            // Always true unless the scores change under the kernel; then it keeps writes in row.
            if (pos < static_cast<std::uint32_t>(top_k)) {
                dst[pos] = i;
            }
        }
        gt_seen += total >> 16;
        eq_seen += total & 0xffffu;
    }
}

// ---- MoE routing: one warp per token -------------------------------------------------------

constexpr int kRouteWarps = 4;

// a precedes b in selection order: larger value first, ties to the lower index. Index -1 is "no
// candidate" and precedes nothing.
__device__ bool precedes(float av, int ai, float bv, int bi) {
    return ai >= 0 && (bi < 0 || av > bv || (av == bv && ai < bi));
}

// The first of values[0 .. n) in selection order among those after (last_v, last_i), or the
// first overall for last_i = -1; -1 if none is left. Successive calls list the values in order,
// as a sort would. Every lane of the warp calls it and gets lane 0's answer.
__device__ int warp_next(const float* values, int n, float last_v, int last_i) {
    const int lane = static_cast<int>(threadIdx.x) % kWarp;
    float best_v = 0.0f;
    int best_i = -1;
    for (int j = lane; j < n; j += kWarp) {
        const float v = values[j];
        if ((last_i < 0 || precedes(last_v, last_i, v, j)) && precedes(v, j, best_v, best_i)) {
            best_v = v;
            best_i = j;
        }
    }
    for (int o = kWarp / 2; o > 0; o /= 2) {
        const float other_v = __shfl_xor_sync(kFullMask, best_v, o);
        const int other_i = __shfl_xor_sync(kFullMask, best_i, o);
        if (precedes(other_v, other_i, best_v, best_i)) {
            best_v = other_v;
            best_i = other_i;
        }
    }
    // With NaNs the order is not total and lanes could disagree; lane 0 decides for all.
    return __shfl_sync(kFullMask, best_i, 0);
}

__global__ void moe_route_kernel(const float* logits, const float* bias, int tokens, int experts,
                                 int n_group, int topk_group, int top_k, bool norm_topk_prob,
                                 float routed_scaling_factor, bool shared, std::int32_t* expert_out,
                                 float* weight_out) {
    pdl_enter();
    extern __shared__ float smem[];
    const int lane = static_cast<int>(threadIdx.x) % kWarp;
    const int warp = static_cast<int>(threadIdx.x) / kWarp;
    const int t = static_cast<int>(blockIdx.x) * kRouteWarps + warp;
    if (t >= tokens) {
        return;  // the whole warp: only warp-level synchronization follows
    }
    float* score = smem + static_cast<std::int64_t>(warp) * (2 * experts + n_group);
    float* choice = score + experts;  // then masked to the kept groups
    float* group = choice + experts;
    const float* x = logits + static_cast<std::int64_t>(t) * experts;
    for (int e = lane; e < experts; e += kWarp) {
        score[e] = 1.0f / (1.0f + expf(-x[e]));
        choice[e] = score[e] + bias[e];
    }
    __syncwarp();

    // A group's score is the sum of its two best choices, taken in the host's order.
    const int per_group = experts / n_group;
    for (int g = lane; g < n_group; g += kWarp) {
        const float* c = choice + g * per_group;
        float v0 = 0.0f, v1 = 0.0f;
        int i0 = -1, i1 = -1;
        for (int j = 0; j < per_group; ++j) {
            if (precedes(c[j], j, v0, i0)) {
                v1 = v0;
                i1 = i0;
                v0 = c[j];
                i0 = j;
            } else if (precedes(c[j], j, v1, i1)) {
                v1 = c[j];
                i1 = j;
            }
        }
        group[g] = v0 + v1;
    }
    __syncwarp();

    // The kept groups are those up to the topk_group-th in selection order.
    float last_v = 0.0f;
    int last_g = -1;
    for (int k = 0; k < topk_group; ++k) {
        const int g = warp_next(group, n_group, last_v, last_g);
        if (g < 0) {
            break;
        }
        last_v = group[g];
        last_g = g;
    }
    for (int e = lane; e < experts; e += kWarp) {
        const int g = e / per_group;
        if (last_g < 0 || !(group[g] > last_v || (group[g] == last_v && g <= last_g))) {
            choice[e] = -INFINITY;
        }
    }
    __syncwarp();

    const int width = top_k + (shared ? 1 : 0);
    std::int32_t* chosen = expert_out + static_cast<std::int64_t>(t) * width;
    float* weight = weight_out + static_cast<std::int64_t>(t) * width;
    float last_c = 0.0f;
    int last_e = -1;
    float sum = 0.0f;
    for (int k = 0; k < top_k; ++k) {
        int e = warp_next(choice, experts, last_c, last_e);
        if (e < 0) {
            e = 0;  // only NaN logits leave nothing to pick; stay in range
        } else {
            last_c = choice[e];
            last_e = e;
        }
        sum += score[e];  // in pick order, as the host sums
        if (lane == 0) {
            chosen[k] = e;
        }
    }
    __syncwarp();  // orders lane 0's writes of `chosen` before the other lanes read them
    const float denom = norm_topk_prob ? sum + 1e-20f : 1.0f;
    for (int k = lane; k < top_k; k += kWarp) {
        weight[k] = score[chosen[k]] / denom * routed_scaling_factor;
    }
    if (shared && lane == 0) {
        chosen[top_k] = experts;
        weight[top_k] = 1.0f;
    }
}

}  // namespace

void launch_row_topk(const float* score, std::int64_t ld, const std::int32_t* count, int rows,
                     int top_k, std::int32_t* out, cudaStream_t stream) {
    DS_ASSERT(top_k >= 1, top_k);
    if (rows == 0) {
        return;
    }
    launch_kernel(row_topk_kernel, static_cast<unsigned>(rows), kTopkThreads, 0, stream, score, ld,
                  count, top_k, out);
    DS_CUDA_LAUNCH(row_topk, stream, rows, " rows (ld ", ld, "), top ", top_k);
}

void launch_moe_route(const float* logits, const float* bias, int tokens, int experts, int n_group,
                      int topk_group, int top_k, bool norm_topk_prob, float routed_scaling_factor,
                      bool shared, std::int32_t* expert_out, float* weight_out,
                      cudaStream_t stream) {
    DS_ASSERT(n_group >= 1 && experts % n_group == 0 && experts / n_group >= 2 &&
                  experts <= kMaxRoutedExperts && topk_group >= 1 && topk_group <= n_group &&
                  top_k >= 1 && top_k <= experts,
              experts, " experts, ", n_group, " groups, keep ", topk_group, ", top ", top_k);
    if (tokens == 0) {
        return;
    }
    const auto smem =
        static_cast<std::size_t>(kRouteWarps) * (2 * experts + n_group) * sizeof(float);
    const auto blocks = static_cast<unsigned>((tokens + kRouteWarps - 1) / kRouteWarps);
    launch_kernel(moe_route_kernel, blocks, kRouteWarps * kWarp, smem, stream, logits, bias, tokens,
                  experts, n_group, topk_group, top_k, norm_topk_prob, routed_scaling_factor,
                  shared, expert_out, weight_out);
    DS_CUDA_LAUNCH(moe_route, stream, tokens, " tokens x ", experts, " experts in ", n_group,
                   " groups, keep ", topk_group, ", top ", top_k, shared ? " + shared" : "");
}

}  // namespace dsserve::backend::cuda
