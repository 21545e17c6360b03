// Token choice on the device, greedy or drawn, so that a decode step copies token ids to the
// host instead of whole rows of logits. Every pointer is device memory unless said otherwise;
// each launcher enqueues on `stream` and checks the launch.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace dsserve::backend::cuda {

// out[i] = the index of the largest of logits[rows[i] * ld + v] over v < vocab, for i < n: ties
// to the lower index, and the result equals runtime::argmax on the same row bit for bit (NaNs
// never win against a number; a row whose first value is NaN, or that is all NaN, gives 0, as
// no value compares greater than a NaN at index 0). float4 loads where the row's start allows
// them. With `split` a row is split over several blocks and the last one to finish reduces their
// bests, so that a full-vocabulary row is read by many SMs instead of one; without (null), one
// block reads each row. With `mirror` (host memory mapped for the device, or null) the ids are
// also written there, for the host to read once the kernel is done, without a copy.
struct ArgmaxSplit {
    unsigned* done;  // n counters, zero before the first launch; every launch leaves them zero
    void* partials;  // argmax_partials_bytes(n, vocab) bytes, written before they are read
};
std::size_t argmax_partials_bytes(int n, int vocab);
void launch_argmax_rows(const float* logits, std::int64_t ld, const std::int64_t* rows, int n,
                        int vocab, std::int32_t* out, std::int32_t* mirror,
                        const ArgmaxSplit* split, cudaStream_t stream);

// One row to draw from, as model::RowSampling carries it.
struct SampleRow {
    std::int64_t row;
    float temperature;
    int top_k;  // no cut unless 1 < top_k < vocab; 1 is greedy
    float top_p;
    float min_p;
    double canonical;  // the draw, in [0, 1)
};

// out[i] = the token runtime::pick draws from logits row rows[i].row for that row's params and
// canonical, for i < n; NaN logits are never drawn. One block per row; the vocabulary is never
// sorted. The draw order (larger logit first, then lower id) is walked by radix selection over
// the logits' bit patterns: the top-k cut counts tokens, the top-p cut and the draw sum weights,
// and ties at a cut go to the lower ids, as on the host. Weights are those of the host (a float
// difference and quotient, then a double exp), summed as integers in units of 2^-45 of the best
// token's weight, so the sums, and with them the picks, do not depend on the order the threads
// add in. The host adds the same weights as doubles in its own order: a pick differs from the
// host's only where that rounding moves a cut or the draw across a token's edge, and a token
// under half a unit (2^-46 of the best) is never drawn, where the host draws it with at most
// that probability. vocab <= 2^18, so that the sums fit 64 bits. `mirror` as for argmax.
void launch_sample_rows(const float* logits, std::int64_t ld, const SampleRow* rows, int n,
                        int vocab, std::int32_t* out, std::int32_t* mirror, cudaStream_t stream);

}  // namespace dsserve::backend::cuda
