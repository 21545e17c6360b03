// Row argmax for greedy decoding, and the draw at temperature > 0. Only comparisons decide the
// argmax, never rounding: the candidates' order (larger value first, then lower index, NaNs out)
// is total, so the tree reduction gives the host's left-to-right answer whatever order the
// threads combine in. The draw keeps that order and adds weights as integers, for the same
// reason: its result does not depend on how the threads are scheduled.
#include <algorithm>
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

// Ids go to out and, where given, to the host's mapped mirror.
__device__ __forceinline__ void put(std::int32_t* out, std::int32_t* mirror, int i, int id) {
    out[i] = id;
    if (mirror != nullptr) {
        mirror[i] = id;
    }
}

// A block's share of a split row: 4,096 floats, so that a 129,280-wide row spreads over 32
// blocks, each one round of loads per thread.
constexpr int kArgmaxSliceFloats = 4096;
constexpr int kArgmaxMaxSlices = 64;

int argmax_slices(int vocab) {
    return std::min(kArgmaxMaxSlices,
                    std::max(1, (vocab + kArgmaxSliceFloats - 1) / kArgmaxSliceFloats));
}

// A split argmax's scratch as the kernel addresses it: per row a count of finished slices (kept
// apart from the bests, whose layout depends on the launch's row count), then the slices' bests.
struct ArgmaxScratch {
    unsigned* done;
    float* best_v;
    int* best_i;
};

ArgmaxScratch argmax_scratch(const ArgmaxSplit* split, int n, int slices) {
    if (split == nullptr) {
        return {nullptr, nullptr, nullptr};
    }
    auto* best_v = static_cast<float*>(split->partials);
    auto* best_i = reinterpret_cast<int*>(best_v + static_cast<std::size_t>(n) * slices);
    return {split->done, best_v, best_i};
}

__device__ __forceinline__ void consider4(float4 v, int i, float& best_v, int& best_i) {
    consider(v.x, i, best_v, best_i);
    consider(v.y, i + 1, best_v, best_i);
    consider(v.z, i + 2, best_v, best_i);
    consider(v.w, i + 3, best_v, best_i);
}

// blockIdx.x: the row; blockIdx.y: its slice of float4s (the head's scalars go with the first
// slice, the tail's with the last).
__global__ void __launch_bounds__(kArgmaxThreads)
    argmax_rows_kernel(const float* logits, std::int64_t ld, const std::int64_t* rows, int vocab,
                       std::int32_t* out, std::int32_t* mirror, ArgmaxScratch scratch) {
    pdl_enter();
    __shared__ float warp_v[kArgmaxWarps];
    __shared__ int warp_i[kArgmaxWarps];
    const int tid = static_cast<int>(threadIdx.x);
    const float* row = logits + rows[blockIdx.x] * ld;
    const int slices = static_cast<int>(gridDim.y), slice = static_cast<int>(blockIdx.y);
    float best_v = -INFINITY;
    int best_i = INT_MAX;

    // Scalars up to the first 16-byte boundary, float4s, then the scalar tail.
    const auto misaligned = static_cast<int>((reinterpret_cast<std::uintptr_t>(row) % 16) / 4);
    const int head = min(vocab, misaligned == 0 ? 0 : 4 - misaligned);
    const int body = (vocab - head) / 4;
    const int per_slice = (body + slices - 1) / slices;
    const int begin = min(body, slice * per_slice), end = min(body, begin + per_slice);
    const auto* row4 = reinterpret_cast<const float4*>(row + head);
    if (slice == 0 && tid < head) {
        consider(row[tid], tid, best_v, best_i);
    }
    for (int base = begin + tid; base < end; base += kArgmaxThreads * kArgmaxUnroll) {
        float4 v[kArgmaxUnroll];
#pragma unroll
        for (int u = 0; u < kArgmaxUnroll; ++u) {
            const int k = base + u * kArgmaxThreads;
            v[u] = k < end ? __ldg(row4 + k) : make_float4(NAN, NAN, NAN, NAN);
        }
#pragma unroll
        for (int u = 0; u < kArgmaxUnroll; ++u) {
            consider4(v[u], head + 4 * (base + u * kArgmaxThreads), best_v, best_i);
        }
    }
    if (slice == slices - 1) {
        for (int i = head + 4 * body + tid; i < vocab; i += kArgmaxThreads) {
            consider(row[i], i, best_v, best_i);
        }
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
    if (lane != 0) {
        return;
    }
    if (slices > 1) {
        // The order is total, so the last slice to finish reduces the others' bests in any order.
        const std::size_t at = static_cast<std::size_t>(blockIdx.x) * slices;
        scratch.best_v[at + slice] = best_v;
        scratch.best_i[at + slice] = best_i;
        __threadfence();
        if (atomicAdd(scratch.done + blockIdx.x, 1u) != static_cast<unsigned>(slices - 1)) {
            return;
        }
        __threadfence();
        for (int k = 0; k < slices; ++k) {
            consider(__ldcg(scratch.best_v + at + k), __ldcg(scratch.best_i + at + k), best_v,
                     best_i);
        }
        scratch.done[blockIdx.x] = 0;  // for the next launch, which waits for this one
    }
    // The host keeps index 0 while nothing compares greater than it: a NaN there wins, and so
    // does index 0 of an all-NaN row.
    put(out, mirror, static_cast<int>(blockIdx.x), isnan(row[0]) || best_i == INT_MAX ? 0 : best_i);
}

// The draw. A block walks its row several times (505 KB at the full vocabulary, from L2 after
// the first time): once for the best token, then for each cut (top-k, top-p, the draw itself)
// four radix passes of eight bits over the logits' keys and one or two passes to rank the ties
// at the cut's key by id.
constexpr int kSampleThreads = 512;
constexpr int kSampleWarps = kSampleThreads / kWarp;
constexpr int kDigitBits = 8;
constexpr int kDigits = 1 << kDigitBits;
constexpr int kDigitsPerLane = kDigits / kWarp;
constexpr unsigned kNoDigit = kDigits;
constexpr int kMaxSampleVocab = 1 << 18;
// A weight of 1 (the best token's) is 2^45 units: 2^18 tokens sum below 2^63.
constexpr double kWeightUnits = 35184372088832.0;

using Units = unsigned long long;

// The logit's bits as an unsigned key in the same order as the values (-0 and +0 as one key);
// the draw order is larger key first, then lower id.
__device__ __forceinline__ std::uint32_t order_key(float v) {
    const std::uint32_t b = __float_as_uint(v == 0.0f ? 0.0f : v);
    return (b & 0x80000000u) != 0 ? ~b : b | 0x80000000u;
}

// The kept tokens so far, a prefix of the draw order: all up to and including (key, id).
struct Prefix {
    std::uint32_t key;
    int id;
    __device__ bool holds(std::uint32_t k, int i) const { return k > key || (k == key && i <= id); }
};

struct SampleShared {
    Units weight[kDigits];
    unsigned count[kDigits];
    Units warp_best[kSampleWarps];
    unsigned warp_ties[kSampleWarps];
    std::uint32_t cut_key;
    Units cut_before, cut_weight, cut_target;
    unsigned cut_count;
    int tie_id;
};

// Where the running weight of the members, in draw order, first reaches `target`: the key of
// that token, the weight of the members at larger keys, and the members at this key (all of
// one weight, since they share a logit).
struct Cut {
    std::uint32_t key;
    Units before;
    Units weight;
    unsigned count;
    Units target;
};

// Adds each lane's weight to its digit's bin, one shared atomic per distinct digit of the warp:
// most of a row falls into a few bins on the first pass. Weights are below 2^48, so three
// 16-bit parts sum over 32 lanes without overflow.
__device__ __forceinline__ void add_to_digit(unsigned digit, Units w, SampleShared& s) {
    const unsigned peers = __match_any_sync(kFullMask, digit);
    const unsigned lo = __reduce_add_sync(peers, static_cast<unsigned>(w & 0xffffu));
    const unsigned mid = __reduce_add_sync(peers, static_cast<unsigned>((w >> 16) & 0xffffu));
    const unsigned hi = __reduce_add_sync(peers, static_cast<unsigned>(w >> 32));
    const int lane = static_cast<int>(threadIdx.x) % kWarp;
    if (digit != kNoDigit && lane == __ffs(static_cast<int>(peers)) - 1) {
        atomicAdd(&s.weight[digit], static_cast<Units>(lo) + (static_cast<Units>(mid) << 16) +
                                        (static_cast<Units>(hi) << 32));
        atomicAdd(&s.count[digit], static_cast<unsigned>(__popc(peers)));
    }
}

// Radix selection of a cut. weigh(i, logit, key) gives a token's weight in units, 0 when it is
// not a member; target(total) turns the members' total weight into the weight to reach. A cut
// lands only on a member of positive weight: when the target exceeds the total, on the last.
template <typename Weigh, typename Target>
__device__ Cut radix_cut(const float* row, int vocab, Weigh weigh, Target target, SampleShared& s) {
    const int tid = static_cast<int>(threadIdx.x), lane = tid % kWarp, warp = tid / kWarp;
    std::uint32_t prefix = 0;
    Units before = 0, goal = 0;
    for (int pass = 0; pass < 32 / kDigitBits; ++pass) {
        const int shift = 32 - kDigitBits * (pass + 1);
        for (int d = tid; d < kDigits; d += kSampleThreads) {
            s.weight[d] = 0;
            s.count[d] = 0;
        }
        __syncthreads();
        for (int base = 0; base < vocab; base += kSampleThreads) {
            const int i = base + tid;
            unsigned digit = kNoDigit;
            Units w = 0;
            if (i < vocab) {
                const float l = row[i];
                const std::uint32_t k = order_key(l);
                if (!isnan(l) &&
                    (pass == 0 || k >> (shift + kDigitBits) == prefix >> (shift + kDigitBits))) {
                    w = weigh(i, l, k);
                    if (w > 0) {
                        digit = (k >> shift) & (kDigits - 1);
                    }
                }
            }
            add_to_digit(digit, w, s);
        }
        __syncthreads();
        if (warp == 0) {
            // Lane L holds eight digits, from kDigits - 1 - 8L down: lane order is draw order.
            Units w[kDigitsPerLane];
            Units local = 0;
#pragma unroll
            for (int j = 0; j < kDigitsPerLane; ++j) {
                w[j] = s.weight[kDigits - 1 - lane * kDigitsPerLane - j];
                local += w[j];
            }
            Units through = local;
            for (int o = 1; o < kWarp; o *= 2) {
                const Units v = __shfl_up_sync(kFullMask, through, o);
                if (lane >= o) {
                    through += v;
                }
            }
            if (pass == 0) {
                goal = target(__shfl_sync(kFullMask, through, kWarp - 1));
            }
            const unsigned reach = __ballot_sync(kFullMask, local > 0 && before + through >= goal);
            const unsigned any = __ballot_sync(kFullMask, local > 0);
            const int hit =
                reach != 0 ? __ffs(static_cast<int>(reach)) - 1 : kWarp - 1 - __clz(any);
            if (lane == hit) {
                // The first digit of positive weight that reaches the goal; failing that (the
                // goal is above the total), the last of positive weight.
                Units at = before + through - local, pick_at = 0, pick_w = 0;
                int pick = 0;
                bool reached = false;
#pragma unroll
                for (int j = 0; j < kDigitsPerLane; ++j) {
                    if (!reached && w[j] > 0) {
                        pick = j;
                        pick_at = at;
                        pick_w = w[j];
                        reached = reach != 0 && at + w[j] >= goal;
                        at += w[j];
                    }
                }
                const int d = kDigits - 1 - lane * kDigitsPerLane - pick;
                s.cut_key = prefix | (static_cast<std::uint32_t>(d) << shift);
                s.cut_before = pick_at;
                s.cut_weight = pick_w;
                s.cut_count = s.count[d];
                s.cut_target = goal;
            }
        }
        __syncthreads();
        prefix = s.cut_key;
        before = s.cut_before;
    }
    const Cut cut{s.cut_key, s.cut_before, s.cut_weight, s.cut_count, s.cut_target};
    __syncthreads();
    return cut;
}

// How many of the members at the cut's key the cut keeps: the fewest whose weight, added to
// the members' before them, reaches the target (all of them when even that falls short).
__device__ __forceinline__ unsigned tie_rank(const Cut& c) {
    const Units each = c.weight / c.count;
    if (c.target <= c.before + each) {
        return 1;
    }
    const Units n = (c.target - c.before + each - 1) / each;
    return n < c.count ? static_cast<unsigned>(n) : c.count;
}

// The id of the n-th token (from 1), in id order, whose key is `key` and that `within` holds.
// Tiles of the row go by until the one holding it, then that tile is ranked.
__device__ int nth_with_key(const float* row, int vocab, std::uint32_t key, Prefix within,
                            unsigned n, SampleShared& s) {
    const int tid = static_cast<int>(threadIdx.x), lane = tid % kWarp, warp = tid / kWarp;
    for (int base = 0; base < vocab; base += kSampleThreads) {
        const int i = base + tid;
        const bool tie = i < vocab && order_key(row[i]) == key && within.holds(key, i);
        const auto count = static_cast<unsigned>(__syncthreads_count(tie));
        if (count < n) {
            n -= count;
            continue;
        }
        const unsigned ballot = __ballot_sync(kFullMask, tie);
        if (lane == 0) {
            s.warp_ties[warp] = static_cast<unsigned>(__popc(ballot));
        }
        __syncthreads();
        auto rank = static_cast<unsigned>(__popc(ballot & ((1u << lane) - 1))) + 1;
        for (int w = 0; w < warp; ++w) {
            rank += s.warp_ties[w];
        }
        if (tie && rank == n) {
            s.tie_id = i;
        }
        __syncthreads();
        const int id = s.tie_id;
        __syncthreads();
        return id;
    }
    return -1;  // unreachable: a cut's key always has n members
}

// The best token as (key << 32) | (2^32 - 1 - id), so that the larger packed value is the
// earlier token in draw order; 0 is "no token" (every real key is above 0).
__device__ __forceinline__ Units pack_best(std::uint32_t key, int id) {
    return (static_cast<Units>(key) << 32) | (0xffffffffu - static_cast<unsigned>(id));
}

__device__ Units block_max(Units v, SampleShared& s) {
    const int tid = static_cast<int>(threadIdx.x), lane = tid % kWarp, warp = tid / kWarp;
    for (int o = kWarp / 2; o > 0; o /= 2) {
        const Units other = __shfl_xor_sync(kFullMask, v, o);
        v = other > v ? other : v;
    }
    if (lane == 0) {
        s.warp_best[warp] = v;
    }
    __syncthreads();
    v = s.warp_best[0];
    for (int w = 1; w < kSampleWarps; ++w) {
        v = s.warp_best[w] > v ? s.warp_best[w] : v;
    }
    __syncthreads();
    return v;
}

__global__ void __launch_bounds__(kSampleThreads)
    sample_rows_kernel(const float* logits, std::int64_t ld, const SampleRow* rows, int vocab,
                       std::int32_t* out, std::int32_t* mirror) {
    pdl_enter();
    __shared__ SampleShared s;
    const int tid = static_cast<int>(threadIdx.x);
    const SampleRow p = rows[blockIdx.x];
    const float* row = logits + p.row * ld;

    Units best = 0;
    for (int i = tid; i < vocab; i += kSampleThreads) {
        const float l = row[i];
        if (!isnan(l)) {
            const Units v = pack_best(order_key(l), i);
            best = v > best ? v : best;
        }
    }
    best = block_max(best, s);
    if (best == 0) {  // all NaN
        if (tid == 0) {
            put(out, mirror, static_cast<int>(blockIdx.x), 0);
        }
        return;
    }
    const auto best_id = static_cast<int>(0xffffffffu - static_cast<unsigned>(best));
    const float max_logit = row[best_id];
    // Greedy, or a best logit of +-inf: the host keeps only the best token then.
    if (!(p.temperature > 0.0f) || p.top_k == 1 || isinf(max_logit)) {
        if (tid == 0) {
            put(out, mirror, static_cast<int>(blockIdx.x), best_id);
        }
        return;
    }

    // The host's weight, rounding included: a float difference and quotient, a double exp.
    const float temperature = p.temperature;
    const auto weight = [=](float l) {
        return exp(static_cast<double>(__fdiv_rn(__fsub_rn(l, max_logit), temperature)));
    };
    const auto units = [](double w) { return __double2ull_rn(w * kWeightUnits); };

    Prefix kept{0u, INT_MAX};
    if (p.top_k > 1 && p.top_k < vocab) {
        const Cut c = radix_cut(
            row, vocab, [](int, float, std::uint32_t) -> Units { return 1; },
            [&](Units) { return static_cast<Units>(p.top_k); }, s);
        kept = Prefix{c.key, nth_with_key(row, vocab, c.key, kept, tie_rank(c), s)};
    }
    if (p.top_p < 1.0f) {
        const double top_p = fmax(static_cast<double>(p.top_p), 0.0);
        const Cut c = radix_cut(
            row, vocab,
            [&](int i, float l, std::uint32_t k) -> Units {
                return kept.holds(k, i) ? units(weight(l)) : 0;
            },
            [&](Units total) {
                return static_cast<Units>(ceil(top_p * static_cast<double>(total)));
            },
            s);
        kept = Prefix{c.key, nth_with_key(row, vocab, c.key, kept, tie_rank(c), s)};
    }
    // min-p against the best token's weight, exp(0) = 1; the best token always stays.
    const double min_p = fmin(static_cast<double>(p.min_p), 1.0);
    const double canonical = fmin(fmax(p.canonical, 0.0), 1.0);
    const Cut c = radix_cut(
        row, vocab,
        [&](int i, float l, std::uint32_t k) -> Units {
            if (!kept.holds(k, i)) {
                return 0;
            }
            const double w = weight(l);
            return w >= min_p ? units(w) : 0;
        },
        [&](Units total) {
            return static_cast<Units>(ceil(canonical * static_cast<double>(total)));
        },
        s);
    const int id = nth_with_key(row, vocab, c.key, kept, tie_rank(c), s);
    if (tid == 0) {
        put(out, mirror, static_cast<int>(blockIdx.x), id);
    }
}

}  // namespace

std::size_t argmax_partials_bytes(int n, int vocab) {
    return static_cast<std::size_t>(std::max(n, 0)) *
           static_cast<std::size_t>(argmax_slices(vocab)) * (sizeof(float) + sizeof(int));
}

void launch_argmax_rows(const float* logits, std::int64_t ld, const std::int64_t* rows, int n,
                        int vocab, std::int32_t* out, std::int32_t* mirror,
                        const ArgmaxSplit* split, cudaStream_t stream) {
    DS_ASSERT(vocab >= 1 && ld >= vocab && n >= 0, vocab, " ", ld, " ", n);
    if (n == 0) {
        return;
    }
    const int slices = split != nullptr ? argmax_slices(vocab) : 1;
    launch_kernel(argmax_rows_kernel, dim3(static_cast<unsigned>(n), static_cast<unsigned>(slices)),
                  kArgmaxThreads, 0, stream, logits, ld, rows, vocab, out, mirror,
                  argmax_scratch(split, n, slices));
    DS_CUDA_LAUNCH(argmax_rows, stream, n, " rows of ", vocab, " (ld ", ld, "), ", slices,
                   " slices");
}

void launch_sample_rows(const float* logits, std::int64_t ld, const SampleRow* rows, int n,
                        int vocab, std::int32_t* out, std::int32_t* mirror, cudaStream_t stream) {
    DS_ASSERT(vocab >= 1 && vocab <= kMaxSampleVocab && ld >= vocab && n >= 0, vocab, " ", ld, " ",
              n);
    if (n == 0) {
        return;
    }
    launch_kernel(sample_rows_kernel, static_cast<unsigned>(n), kSampleThreads, 0, stream, logits,
                  ld, rows, vocab, out, mirror);
    DS_CUDA_LAUNCH(sample_rows, stream, n, " rows of ", vocab, " (ld ", ld, ")");
}

}  // namespace dsserve::backend::cuda
