// Top-k selections on the device, bit-exact with their host versions: the comparisons are the
// host's own (float order, ties to the lower index), so only inputs decide, never rounding. The
// one exception is the router's sigmoid: expf may differ from libm's by an ulp, which can flip
// two experts whose biased scores are within an ulp of each other.
#include <algorithm>
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

// ---- MoE routing: one block per token, a thread per expert --------------------------------
//
// Every selection is by rank: an item is picked at position r when exactly r items precede it
// (larger value, ties to the lower index), which is the host's sorted order whenever the values
// are ordered (no NaN). Ranks are counted in parallel, so a token's routing is a few dependent
// steps rather than a warp walking the experts once per pick.

// a precedes b in selection order: larger value first, ties to the lower index.
__device__ bool precedes(float av, int ai, float bv, int bi) {
    return av > bv || (av == bv && ai < bi);
}

// Inclusive prefix sums over a warp of two values at once.
__device__ __forceinline__ void warp_inclusive_sums(int& a, int& b) {
    const int lane = threadIdx.x % kWarp;
    for (int o = 1; o < kWarp; o *= 2) {
        const int up_a = __shfl_up_sync(kFullMask, a, o), up_b = __shfl_up_sync(kFullMask, b, o);
        if (lane >= o) {
            a += up_a;
            b += up_b;
        }
    }
}

// Exclusive prefix sums over the block (at most 32 warps) of two values a thread, by warp scans
// and a scan of the warp totals; every thread also gets both totals. All threads must call it.
__device__ void block_exclusive_sums(int& a, int& b, int& total_a, int& total_b) {
    __shared__ int warp_a[kWarp], warp_b[kWarp];
    const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
    const int warps = static_cast<int>(blockDim.x) / kWarp;
    const int own_a = a, own_b = b;
    warp_inclusive_sums(a, b);
    if (lane == kWarp - 1) {
        warp_a[warp] = a;
        warp_b[warp] = b;
    }
    __syncthreads();
    if (warp == 0) {
        int x = lane < warps ? warp_a[lane] : 0, y = lane < warps ? warp_b[lane] : 0;
        warp_inclusive_sums(x, y);
        if (lane < warps) {
            warp_a[lane] = x;  // inclusive over warps
            warp_b[lane] = y;
        }
    }
    __syncthreads();
    a += (warp > 0 ? warp_a[warp - 1] : 0) - own_a;
    b += (warp > 0 ? warp_b[warp - 1] : 0) - own_b;
    total_a = warp_a[warps - 1];
    total_b = warp_b[warps - 1];
    __syncthreads();  // the next call may write the warp totals again
}

// Where assignment i goes among its token's top_k in ascending expert order (ties, which only
// all-NaN router logits make, in assignment order, so that the places are a permutation).
__device__ __forceinline__ int combine_place(const std::int32_t* expert_of, int i, int top_k) {
    const int first = i - i % top_k;
    const std::int32_t e = expert_of[i];
    int smaller = 0;
    for (int o = first; o < first + top_k; ++o) {
        smaller += expert_of[o] < e || (expert_of[o] == e && o < i) ? 1 : 0;
    }
    return first + smaller;
}

// A block lays out a step's expert assignments for the grouped GEMV: counting sort by expert
// (ties in assignment order, so the layout does not depend on thread timing), the list of
// active experts, and for each token its assignments in ascending expert order for the combine,
// which adds them in the order the CPU backend does. Needs num_experts <= blockDim.x threads and
// moe_layout_smem bytes of shared memory.
__device__ void lay_out_assignments(const std::int32_t* experts, const float* weights, int tokens,
                                    int top_k, int num_experts, const MoeLayout& out,
                                    std::int32_t* group_smem) {
    std::int32_t* per_expert = group_smem;                // [num_experts]
    std::int32_t* first_row = group_smem + num_experts;   // [num_experts]
    std::int32_t* row_of = group_smem + 2 * num_experts;  // [tokens * top_k]
    const int n = tokens * top_k;
    // The assignments, read once: the passes below go over them many times.
    std::int32_t* expert_of = row_of + n;  // [tokens * top_k]
    for (int e = threadIdx.x; e < num_experts; e += blockDim.x) {
        per_expert[e] = 0;
    }
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        expert_of[i] = __ldcg(experts + i);  // possibly written by other blocks of this kernel
    }
    __syncthreads();
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        atomicAdd(&per_expert[expert_of[i]], 1);
    }
    __syncthreads();
    // Exclusive prefix sums over experts (one thread each) of the row counts and of "active":
    // rows before expert e, and its slot.
    const int e = threadIdx.x;
    const int mine = e < num_experts ? per_expert[e] : 0;
    int rows_before = mine, slot = mine > 0 ? 1 : 0, total_rows = 0, total_slots = 0;
    block_exclusive_sums(rows_before, slot, total_rows, total_slots);
    if (e < num_experts) {
        first_row[e] = rows_before;
        if (mine > 0) {
            out.slot_expert[slot] = e;
            out.slot_start[slot] = rows_before;
        }
    }
    if (threadIdx.x == 0) {
        out.slot_start[total_slots] = total_rows;
        *out.count = total_slots;
    }
    __syncthreads();
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        const std::int32_t e = expert_of[i];
        int rank = 0;
        for (int j = 0; j < i; ++j) {
            rank += expert_of[j] == e ? 1 : 0;
        }
        const int row = first_row[e] + rank;
        row_of[i] = row;
        out.row_token[row] = i / top_k;
    }
    __syncthreads();
    // Each token's assignments in ascending expert order, for the combine.
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        const int place = combine_place(expert_of, i, top_k);
        out.combine_pos[place] = row_of[i];
        out.combine_weight[place] = __ldcg(weights + i);
    }
}

__global__ void moe_group_kernel(const std::int32_t* experts, const float* weights, int tokens,
                                 int top_k, int num_experts, MoeLayout out) {
    pdl_enter();
    extern __shared__ std::int32_t group_smem[];
    lay_out_assignments(experts, weights, tokens, top_k, num_experts, out, group_smem);
}

__global__ void moe_route_kernel(const float* logits, const float* bias, int experts, int n_group,
                                 int topk_group, int top_k, bool norm_topk_prob,
                                 float routed_scaling_factor, bool shared, std::int32_t* expert_out,
                                 float* weight_out, MoeLayout layout, std::int32_t* arrived) {
    pdl_enter();
    extern __shared__ float smem[];
    float* score = smem;                // [experts] sigmoid affinities
    float* choice = score + experts;    // [experts] affinity + bias
    float* cand_v = choice + experts;   // [experts] the candidates' masked choices
    float* top2 = cand_v + experts;     // [2 n_group] each group's two best choices
    float* group = top2 + 2 * n_group;  // [n_group]
    auto* cand_i = reinterpret_cast<std::int32_t*>(group + n_group);  // [experts]
    std::int32_t* kept = cand_i + experts;                            // [n_group]
    std::int32_t* chosen = kept + n_group;                            // [top_k]
    std::int32_t* n_cand = chosen + top_k;                            // [1]
    auto* denom = reinterpret_cast<float*>(n_cand + 1);               // [1]

    const int e = static_cast<int>(threadIdx.x);
    const int t = static_cast<int>(blockIdx.x);
    const int per_group = experts / n_group;
    const int g = e / per_group, g0 = g * per_group;
    const bool expert = e < experts;
    float c = 0.0f;
    if (expert) {
        const float x = logits[static_cast<std::int64_t>(t) * experts + e];
        score[e] = 1.0f / (1.0f + expf(-x));
        c = score[e] + bias[e];
        choice[e] = c;
    }
    if (e < 2 * n_group) {
        top2[e] = 0.0f;  // what a group without two ordered values sums (NaN only)
    }
    if (e < top_k) {
        chosen[e] = 0;  // stays in range where NaNs leave a rank unfilled
    }
    if (e == 0) {
        *n_cand = 0;
    }
    __syncthreads();

    // A group's score is the sum of its two best choices, the best first, as the host adds them.
    int rank = 0;
    if (expert) {
#pragma unroll 8
        for (int j = g0; j < g0 + per_group; ++j) {
            rank += precedes(choice[j], j, c, e) ? 1 : 0;
        }
        if (rank < 2) {
            top2[2 * g + rank] = c;
        }
    }
    __syncthreads();
    if (e < n_group) {
        group[e] = top2[2 * e] + top2[2 * e + 1];
    }
    __syncthreads();
    if (e < n_group) {
        int group_rank = 0;
        for (int j = 0; j < n_group; ++j) {
            group_rank += precedes(group[j], j, group[e], e) ? 1 : 0;
        }
        kept[e] = group_rank < topk_group ? 1 : 0;
    }
    __syncthreads();

    // Experts outside the kept groups count as -inf, so they order by index; within a group an
    // expert behind top_k others can never be picked. The rest are the candidates.
    if (expert) {
        const bool in = kept[g] != 0;
        const int masked_rank = in ? rank : e - g0;
        if (masked_rank < top_k) {
            const int slot = atomicAdd(n_cand, 1);
            cand_v[slot] = in ? c : -INFINITY;
            cand_i[slot] = e;
        }
    }
    __syncthreads();
    const int candidates = *n_cand;
    for (int i = e; i < candidates; i += static_cast<int>(blockDim.x)) {
        const float v = cand_v[i];
        const int idx = cand_i[i];
        int r = 0;
#pragma unroll 8
        for (int j = 0; j < candidates; ++j) {
            r += precedes(cand_v[j], cand_i[j], v, idx) ? 1 : 0;
        }
        if (r < top_k) {
            chosen[r] = idx;
        }
    }
    __syncthreads();
    if (e == 0) {
        float sum = 0.0f;
        for (int k = 0; k < top_k; ++k) {
            sum += score[chosen[k]];  // in pick order, as the host sums
        }
        *denom = norm_topk_prob ? sum + 1e-20f : 1.0f;
    }
    __syncthreads();
    const int width = top_k + (shared ? 1 : 0);
    std::int32_t* out_e = expert_out + static_cast<std::int64_t>(t) * width;
    float* out_w = weight_out + static_cast<std::int64_t>(t) * width;
    for (int k = e; k < top_k; k += static_cast<int>(blockDim.x)) {
        out_e[k] = chosen[k];
        out_w[k] = score[chosen[k]] / *denom * routed_scaling_factor;
    }
    if (shared && e == 0) {
        out_e[top_k] = experts;
        out_w[top_k] = 1.0f;
    }
    if (layout.count == nullptr) {
        return;
    }
    // The last token's block to finish lays out every token's assignments (a decode step's
    // layout then needs no launch of its own). A lone block's writes are its own to read after
    // a barrier.
    if (gridDim.x == 1) {
        __syncthreads();
    } else {
        __shared__ bool last;
        __threadfence();
        __syncthreads();
        if (e == 0) {
            last = atomicAdd(arrived, 1) == static_cast<int>(gridDim.x) - 1;
        }
        __syncthreads();
        if (!last) {
            return;
        }
        __threadfence();
    }
    lay_out_assignments(expert_out, weight_out, static_cast<int>(gridDim.x), width,
                        experts + (shared ? 1 : 0), layout, reinterpret_cast<std::int32_t*>(smem));
    if (e == 0 && gridDim.x > 1) {
        *arrived = 0;  // ready for the next launch
    }
}

// ---- The tiled layout (any number of assignments) ----------------------------------------

__global__ void moe_count_kernel(const std::int32_t* experts, int n, std::int32_t* counts) {
    pdl_enter();
    const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
    if (i < n) {
        atomicAdd(&counts[experts[i]], 1);
    }
}

// One block, a thread an expert: each expert's first row and its tiles.
__global__ void moe_tile_scan_kernel(int num_experts, MoeTileLayout out) {
    pdl_enter();
    const int e = static_cast<int>(threadIdx.x);
    const int mine = e < num_experts ? __ldcg(out.counts + e) : 0;
    int first_tile = (mine + kMoeTileRows - 1) / kMoeTileRows, unused = 0, tiles = 0, ignored = 0;
    const int own_tiles = first_tile;
    block_exclusive_sums(first_tile, unused, tiles, ignored);
    if (e < num_experts) {
        const int row0 = first_tile * kMoeTileRows;
        out.start[e] = row0;
        for (int i = 0; i < own_tiles; ++i) {
            out.tile_expert[first_tile + i] = e;
        }
        for (int r = mine; r < own_tiles * kMoeTileRows; ++r) {
            out.row_token[row0 + r] = -1;
        }
    }
    if (e == 0) {
        *out.tiles = tiles;
    }
}

// A thread an assignment: its row within its expert comes from counting the expert's count
// down, which leaves the counts zero for the next launch.
__global__ void moe_place_kernel(const std::int32_t* experts, const float* weights, int n,
                                 int width, MoeTileLayout out) {
    pdl_enter();
    const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
    if (i >= n) {
        return;
    }
    const std::int32_t e = experts[i];
    const int row = out.start[e] + atomicSub(&out.counts[e], 1) - 1;
    out.row_token[row] = i / width;
    const int place = combine_place(experts, i, width);
    out.combine_pos[place] = row;
    out.combine_weight[place] = weights[i];
}

__global__ void positions_to_slots_kernel(const std::int32_t* chosen, std::int64_t n, int top_k,
                                          const std::int32_t* table, const std::int32_t* base,
                                          std::int32_t* out, const std::int32_t* count,
                                          std::int32_t* chosen_count) {
    pdl_enter();
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) {
        const std::int32_t p = chosen[i];
        out[i] = p < 0 ? -1 : table[base[i / top_k] + p];
        if (chosen_count != nullptr && i % top_k == 0) {
            chosen_count[i / top_k] = min(count[i / top_k], top_k);
        }
    }
}

std::size_t moe_layout_smem(int tokens, int top_k, int num_experts) {
    return static_cast<std::size_t>(2 * num_experts + 2 * tokens * top_k) * sizeof(std::int32_t);
}

void check_layout(int tokens, int top_k, int num_experts) {
    DS_ASSERT(moe_layout_fits(tokens, top_k, num_experts), "MoE layout of ", tokens, " tokens x ",
              top_k, " of ", num_experts, " experts");
}

}  // namespace

bool moe_layout_fits(std::int64_t tokens, int top_k, int num_experts) {
    const std::int64_t n = tokens * top_k;
    return num_experts <= kMaxLayoutExperts && n <= kMaxLayoutAssignments &&
           moe_layout_smem(static_cast<int>(n), 1, num_experts) <= kMaxLayoutSmem;
}

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

void launch_positions_to_slots(const std::int32_t* chosen, int rows, int top_k,
                               const std::int32_t* table, const std::int32_t* base,
                               std::int32_t* out, cudaStream_t stream, const std::int32_t* count,
                               std::int32_t* chosen_count) {
    DS_ASSERT((count == nullptr) == (chosen_count == nullptr), "count without chosen_count");
    const std::int64_t n = static_cast<std::int64_t>(rows) * top_k;
    if (n == 0) {
        return;
    }
    constexpr int kThreads = 256;
    launch_kernel(positions_to_slots_kernel, static_cast<unsigned>((n + kThreads - 1) / kThreads),
                  kThreads, 0, stream, chosen, n, top_k, table, base, out, count, chosen_count);
    DS_CUDA_LAUNCH(positions_to_slots, stream, rows, " rows, top ", top_k);
}

void launch_moe_group(const std::int32_t* experts, const float* weights, int tokens, int top_k,
                      int num_experts, const MoeLayout& out, cudaStream_t stream) {
    if (tokens == 0) {
        return;
    }
    check_layout(tokens, top_k, num_experts);
    launch_kernel(moe_group_kernel, 1, kMaxLayoutExperts,
                  moe_layout_smem(tokens, top_k, num_experts), stream, experts, weights, tokens,
                  top_k, num_experts, out);
    DS_CUDA_LAUNCH(moe_group, stream, tokens, " tokens x ", top_k, " of ", num_experts, " experts");
}

std::int64_t moe_tiles_bound(std::int64_t n, int num_experts) {
    // Each active expert pads fewer than kMoeTileRows rows.
    return (n + (kMoeTileRows - 1) * std::min<std::int64_t>(n, num_experts)) / kMoeTileRows;
}

void launch_moe_tile_layout(const std::int32_t* experts, const float* weights, int tokens,
                            int width, int num_experts, const MoeTileLayout& out,
                            cudaStream_t stream) {
    DS_ASSERT(num_experts >= 1 && num_experts <= kMaxLayoutExperts && width >= 1, num_experts,
              " experts, ", width, " a token");
    const int n = tokens * width;
    if (n == 0) {
        return;
    }
    constexpr int kThreads = 256;
    const auto blocks = static_cast<unsigned>((n + kThreads - 1) / kThreads);
    launch_kernel(moe_count_kernel, blocks, kThreads, 0, stream, experts, n, out.counts);
    DS_CUDA_LAUNCH(moe_count, stream, n, " assignments");
    const int threads = (num_experts + kWarp - 1) / kWarp * kWarp;
    launch_kernel(moe_tile_scan_kernel, 1, static_cast<unsigned>(threads), 0, stream, num_experts,
                  out);
    DS_CUDA_LAUNCH(moe_tile_scan, stream, num_experts, " experts");
    launch_kernel(moe_place_kernel, blocks, kThreads, 0, stream, experts, weights, n, width, out);
    DS_CUDA_LAUNCH(moe_place, stream, tokens, " tokens x ", width);
}

void launch_moe_route(const float* logits, const float* bias, int tokens, int experts, int n_group,
                      int topk_group, int top_k, bool norm_topk_prob, float routed_scaling_factor,
                      bool shared, std::int32_t* expert_out, float* weight_out, cudaStream_t stream,
                      const MoeLayout* layout, std::int32_t* arrived) {
    DS_ASSERT(n_group >= 1 && experts % n_group == 0 && experts / n_group >= 2 &&
                  experts <= kMaxRoutedExperts && topk_group >= 1 && topk_group <= n_group &&
                  top_k >= 1 && top_k <= experts,
              experts, " experts, ", n_group, " groups, keep ", topk_group, ", top ", top_k);
    DS_ASSERT(layout == nullptr || (layout->count != nullptr && arrived != nullptr),
              "MoE routing with a layout needs its arrival counter");
    if (tokens == 0) {
        return;
    }
    const int width = top_k + (shared ? 1 : 0), num_experts = experts + (shared ? 1 : 0);
    std::size_t smem = static_cast<std::size_t>(4 * experts + 4 * n_group + top_k + 2) * 4;
    int threads = experts;
    if (layout != nullptr) {
        check_layout(tokens, width, num_experts);
        smem = std::max(smem, moe_layout_smem(tokens, width, num_experts));
        // The layout's scan takes a thread an expert; its rank pass, quadratic in the
        // assignments, as many threads as it can use, as the layout kernel has.
        threads = std::max({threads, num_experts, std::min(tokens * width, kMaxLayoutExperts)});
    }
    threads = (threads + kWarp - 1) / kWarp * kWarp;
    launch_kernel(moe_route_kernel, static_cast<unsigned>(tokens), threads, smem, stream, logits,
                  bias, experts, n_group, topk_group, top_k, norm_topk_prob, routed_scaling_factor,
                  shared, expert_out, weight_out, layout != nullptr ? *layout : MoeLayout{},
                  arrived);
    DS_CUDA_LAUNCH(moe_route, stream, tokens, " tokens x ", experts, " experts in ", n_group,
                   " groups, keep ", topk_group, ", top ", top_k, shared ? " + shared" : "",
                   layout != nullptr ? ", laid out" : "");
}

}  // namespace dsserve::backend::cuda
