// Token choice on the device, so that a decode step copies token ids to the host instead of
// whole rows of logits. Every pointer is device memory; each launcher enqueues on `stream` and
// checks the launch.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace dsserve::backend::cuda {

// out[i] = the index of the largest of logits[rows[i] * ld + v] over v < vocab, for i < n: ties
// to the lower index, and the result equals runtime::argmax on the same row bit for bit (NaNs
// never win against a number; a row whose first value is NaN, or that is all NaN, gives 0, as
// no value compares greater than a NaN at index 0). One block per row, float4 loads where the
// row's start allows them.
void launch_argmax_rows(const float* logits, std::int64_t ld, const std::int64_t* rows, int n,
                        int vocab, std::int32_t* out, cudaStream_t stream);

}  // namespace dsserve::backend::cuda
