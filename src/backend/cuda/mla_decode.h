// Absorbed MLA for decode: the same result as launch_mla_attend (kernels.h), computed so that each
// key row is read once per group of heads instead of once per head, with a token's keys split
// across blocks (flash-decoding) so that a batch of one still fills the GPU. Every pointer is
// device memory; the launcher enqueues on `stream` and checks the launch.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "backend/cuda/kernels.h"

namespace dsserve::backend::cuda {

// Scratch that launch_mla_decode needs for these arguments (0 when it needs none): tokens x splits
// x heads x (lora + 2) floats, where splits > 1 only while tokens x head groups (of 16 heads over
// a float32 cache, 64 over a BF16 one) is below the SM count. max_keys is the largest key_count;
// the figure depends on the current device's SM count. It is not monotonic in tokens, but never
// exceeds 16 x SMs x (lora + 2) floats over a float32 cache or 64 x SMs x (lora + 2) over a BF16
// one (4.4 and 17.4 MB on an H200), which a caller may allocate once.
std::size_t mla_decode_workspace_bytes(const MlaShape& shape, int max_keys, CacheFormat format);

// As launch_mla_attend: for token t and head h, softmax over the key_count[t] cache slots at
// keys + key_offset[t] of (q_lat[t, h] . latent[slot] + q_rope[t, h] . k_rope[slot]) scale, where
// q_rope[t, h] starts at q + (t heads + h) qk + nope; o_lat[t, h] = sum_s p_s latent[slot]. A token
// without keys gets zeros. `workspace` holds mla_decode_workspace_bytes(shape, max_keys) bytes
// and is not read before it is written. Shapes other than lora 512, rope 64 (or cache pointers
// not 16-byte aligned) go to launch_mla_attend.
//
// Over a BF16 cache the products run on tensor cores: queries and probabilities are rounded to
// bfloat16 (sums stay float32), which moves o_lat by about 2^-9 of its scale from the float32
// result over the same cache values.
void launch_mla_decode(const float* q_lat, const float* q, CacheFormat format, const void* latent,
                       const void* k_rope, const std::int32_t* keys, const std::int32_t* key_offset,
                       const std::int32_t* key_count, const MlaShape& shape, int max_keys,
                       void* workspace, float* o_lat, cudaStream_t stream);

}  // namespace dsserve::backend::cuda
