// Causal multi-head attention for MLA prefill (mha_prefill.h). A block: 64 query rows of one
// sequence and one head, four warps of 16 rows. Per 64-key tile, S = Q K^T as mma.sync
// m16n8k16 bfloat16 products (K = 192: the 128 expanded nope dims and the 64 shared rotary dims),
// an online softmax in registers in base 2, and O += P V with P taken straight from the score
// accumulators as the A operand (the accumulator layout of two 8-key tiles is the A fragment of
// one 16-key step). Key and value tiles are double-buffered through cp.async; the queries' bf16
// fragments stay in registers for the whole walk.
#include <cuda_bf16.h>

#include <cmath>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/mha_prefill.h"
#include "backend/cuda/mma.cuh"

namespace dsserve::backend::cuda {
namespace {

constexpr int kNope = 128, kRope = 64, kQk = kNope + kRope, kV = 128;
constexpr int kRows = kMhaTileRows, kKeys = 64, kThreads = 128, kWarp = 32;
// Row strides in bf16 elements, 16 bytes past a multiple of 128 so that the eight rows of an
// ldmatrix phase fall in distinct bank groups.
constexpr int kQStride = kQk + 8, kVStride = kV + 8;
constexpr int kQElems = kRows * kQStride, kKElems = kKeys * kQStride, kVElems = kKeys * kVStride;
constexpr std::size_t kSmemBytes = (kQElems + 2 * (kKElems + kVElems)) * sizeof(__nv_bfloat16);
constexpr float kLog2e = 1.4426950408889634f;
static_assert(kRows == 4 * 16 && kThreads == 4 * kWarp && kQk % 16 == 0 && kV % 16 == 0);

__device__ void cp_async16_zfill(unsigned dst, const void* src, bool valid) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
                 "r"(valid ? 16 : 0)
                 : "memory");
}

__global__ void gather_rows_bytes_kernel(const uint4* src, int row_chunks,
                                         const std::int32_t* index, std::int64_t n, uint4* dst) {
    pdl_enter();
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n * row_chunks) {
        const std::int64_t row = i / row_chunks, c = i % row_chunks;
        dst[i] = src[static_cast<std::int64_t>(index[row]) * row_chunks + c];
    }
}

__global__ void __launch_bounds__(kThreads)
    mha_prefill_kernel(const float* __restrict__ q, const __nv_bfloat16* __restrict__ kv,
                       const __nv_bfloat16* __restrict__ k_rope, const MhaTile* tiles, int heads,
                       float scale, float* __restrict__ out) {
    pdl_enter();
    extern __shared__ uint4 smem[];
    auto* qs = reinterpret_cast<__nv_bfloat16*>(smem);  // [kRows][kQStride]
    __nv_bfloat16* ks = qs + kQElems;                   // [2][kKeys][kQStride]
    __nv_bfloat16* vs = ks + 2 * kKElems;               // [2][kKeys][kVStride]
    const MhaTile tile = tiles[blockIdx.x];
    const int h = static_cast<int>(blockIdx.y);
    const int tid = static_cast<int>(threadIdx.x), lane = tid % kWarp, warp = tid / kWarp;
    const int g = lane / 4, qd = lane % 4;
    const std::int64_t kv_ld = static_cast<std::int64_t>(heads) * (kNope + kV);
    const int n_keys = tile.q_pos + tile.rows;  // what the tile's last row sees
    const int key_tiles = (n_keys + kKeys - 1) / kKeys;

    auto load_keys = [&](int kt, int buf) {
        __nv_bfloat16* kdst = ks + buf * kKElems;
        __nv_bfloat16* vdst = vs + buf * kVElems;
        constexpr int kKChunks = kQk / 8, kVChunks = kV / 8, kChunks = kKChunks + kVChunks;
        for (int c = tid; c < kKeys * kChunks; c += kThreads) {
            const int key = c / kChunks, part = c % kChunks;
            const int p = kt * kKeys + key;
            const bool valid = p < n_keys;
            const std::int64_t row = tile.key_row + (valid ? p : 0);
            const __nv_bfloat16* src;
            unsigned dst;
            if (part < kNope / 8) {
                src = kv + row * kv_ld + h * (kNope + kV) + 8 * part;
                dst = smem_addr(kdst + key * kQStride + 8 * part);
            } else if (part < kKChunks) {
                src = k_rope + row * kRope + 8 * (part - kNope / 8);
                dst = smem_addr(kdst + key * kQStride + 8 * part);
            } else {
                src = kv + row * kv_ld + h * (kNope + kV) + kNope + 8 * (part - kKChunks);
                dst = smem_addr(vdst + key * kVStride + 8 * (part - kKChunks));
            }
            cp_async16_zfill(dst, src, valid);
        }
        commit_async();
    };
    load_keys(0, 0);
    // Queries, rounded to bfloat16; rows past the tile are zeros.
    for (int i = tid; i < kRows * kQk / 4; i += kThreads) {
        const int r = i / (kQk / 4), c = i % (kQk / 4);
        float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (r < tile.rows) {
            v = *reinterpret_cast<const float4*>(
                q + (static_cast<std::int64_t>(tile.q_row + r) * heads + h) * kQk + 4 * c);
        }
        *reinterpret_cast<uint2*>(qs + r * kQStride + 4 * c) =
            make_uint2(pack_bf16(v.x, v.y), pack_bf16(v.z, v.w));
    }
    __syncthreads();
    unsigned qf[kQk / 16][4];
#pragma unroll
    for (int s = 0; s < kQk / 16; ++s) {
        ldmatrix_x4(qf[s],
                    smem_addr(qs + (16 * warp + lane % 16) * kQStride + 16 * s + 8 * (lane / 16)));
    }

    const float sl = scale * kLog2e;
    // Rows g and g + 8 of the warp's 16: their positions, running max (base 2) and sum share.
    const int pos0 = tile.q_pos + 16 * warp + g, pos1 = pos0 + 8;
    const int warp_last = tile.q_pos + 16 * warp + 15;
    float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.0f, 0.0f};
    float o[kV / 8][4];
#pragma unroll
    for (auto& a : o) {
        a[0] = a[1] = a[2] = a[3] = 0.0f;
    }
    const int k_row = lane % 8 + 8 * (lane / 16), k_col = 8 * (lane / 8 % 2);
    const int v_row = lane % 8 + 8 * (lane / 8 % 2), v_col = 8 * (lane / 16);

    for (int kt = 0; kt < key_tiles; ++kt) {
        if (kt + 1 < key_tiles) {
            load_keys(kt + 1, (kt + 1) % 2);
            wait_async<1>();
        } else {
            wait_async<0>();
        }
        __syncthreads();
        const int key0 = kt * kKeys;
        if (key0 <= warp_last) {  // tiles wholly past the warp's rows add nothing
            const __nv_bfloat16* kt_s = ks + (kt % 2) * kKElems;
            const __nv_bfloat16* vt_s = vs + (kt % 2) * kVElems;
            float sc[kKeys / 8][4];
#pragma unroll
            for (auto& a : sc) {
                a[0] = a[1] = a[2] = a[3] = 0.0f;
            }
#pragma unroll
            for (int pair = 0; pair < kKeys / 16; ++pair) {
#pragma unroll
                for (int s = 0; s < kQk / 16; ++s) {
                    unsigned b[4];
                    ldmatrix_x4(b,
                                smem_addr(kt_s + (16 * pair + k_row) * kQStride + 16 * s + k_col));
                    mma_bf16(sc[2 * pair], qf[s], b[0], b[1]);
                    mma_bf16(sc[2 * pair + 1], qf[s], b[2], b[3]);
                }
            }
            // Scale, mask (causal), and the rows' new maxima.
            float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
            for (int nt = 0; nt < kKeys / 8; ++nt) {
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    const int key = key0 + 8 * nt + 2 * qd + e % 2;
                    const int pos = e < 2 ? pos0 : pos1;
                    sc[nt][e] = key <= pos ? sc[nt][e] * sl : -INFINITY;
                    mx[e / 2] = fmaxf(mx[e / 2], sc[nt][e]);
                }
            }
            float alpha[2], base[2];
#pragma unroll
            for (int r = 0; r < 2; ++r) {
                const float m_new = fmaxf(m_run[r], quad_max(mx[r]));
                base[r] = m_new == -INFINITY ? 0.0f : m_new;  // a row with no key yet
                alpha[r] = exp2f(m_run[r] - base[r]);
                m_run[r] = m_new;
                l_run[r] *= alpha[r];
            }
#pragma unroll
            for (int nt = 0; nt < kKeys / 8; ++nt) {
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    sc[nt][e] = exp2f(sc[nt][e] - base[e / 2]);
                    l_run[e / 2] += sc[nt][e];
                }
            }
#pragma unroll
            for (auto& a : o) {
                a[0] *= alpha[0];
                a[1] *= alpha[0];
                a[2] *= alpha[1];
                a[3] *= alpha[1];
            }
            // O += P V, P's 16-key steps from pairs of 8-key score tiles.
#pragma unroll
            for (int kk = 0; kk < kKeys / 16; ++kk) {
                const unsigned a[4] = {pack_bf16(sc[2 * kk][0], sc[2 * kk][1]),
                                       pack_bf16(sc[2 * kk][2], sc[2 * kk][3]),
                                       pack_bf16(sc[2 * kk + 1][0], sc[2 * kk + 1][1]),
                                       pack_bf16(sc[2 * kk + 1][2], sc[2 * kk + 1][3])};
#pragma unroll
                for (int dp = 0; dp < kV / 16; ++dp) {
                    unsigned b[4];
                    ldmatrix_x4_trans(
                        b, smem_addr(vt_s + (16 * kk + v_row) * kVStride + 16 * dp + v_col));
                    mma_bf16(o[2 * dp], a, b[0], b[1]);
                    mma_bf16(o[2 * dp + 1], a, b[2], b[3]);
                }
            }
        }
        __syncthreads();  // the stage just read is the one the next iteration loads
    }
    const float inv[2] = {1.0f / quad_sum(l_run[0]), 1.0f / quad_sum(l_run[1])};
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        const int row = 16 * warp + g + 8 * r;
        if (row >= tile.rows) {
            continue;
        }
        float* dst = out + (static_cast<std::int64_t>(tile.q_row + row) * heads + h) * kV;
#pragma unroll
        for (int nt = 0; nt < kV / 8; ++nt) {
            *reinterpret_cast<float2*>(dst + 8 * nt + 2 * qd) =
                make_float2(o[nt][2 * r] * inv[r], o[nt][2 * r + 1] * inv[r]);
        }
    }
}

}  // namespace

bool mha_prefill_supports(int nope, int rope, int v) {
    return nope == kNope && rope == kRope && v == kV;
}

void launch_gather_rows_bytes(const void* src, int row_bytes, const std::int32_t* index,
                              std::int64_t n, void* dst, cudaStream_t stream) {
    DS_ASSERT(row_bytes % 16 == 0 && aligned16(src, dst), row_bytes);
    if (n == 0) {
        return;
    }
    const int chunks = row_bytes / 16;
    const std::int64_t total = n * chunks;
    launch_kernel(gather_rows_bytes_kernel, static_cast<unsigned>((total + 255) / 256), 256, 0,
                  stream, static_cast<const uint4*>(src), chunks, index, n,
                  static_cast<uint4*>(dst));
    DS_CUDA_LAUNCH(gather_rows_bytes, stream, n, " rows of ", row_bytes, " bytes");
}

void launch_mha_prefill(const float* q, const void* kv, const void* k_rope, const MhaTile* tiles,
                        int num_tiles, int heads, float scale, float* out, cudaStream_t stream) {
    if (num_tiles == 0) {
        return;
    }
    DS_ASSERT(heads >= 1 && heads <= 65535 && aligned16(q, kv, k_rope), heads);
    static const bool sized = [] {
        check_cuda(
            cudaFuncSetAttribute(mha_prefill_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 static_cast<int>(kSmemBytes)),
            "cudaFuncSetAttribute (mha prefill)");
        return true;
    }();
    (void)sized;
    launch_kernel(mha_prefill_kernel, dim3(static_cast<unsigned>(num_tiles), heads), kThreads,
                  kSmemBytes, stream, q, static_cast<const __nv_bfloat16*>(kv),
                  static_cast<const __nv_bfloat16*>(k_rope), tiles, heads, scale, out);
    DS_CUDA_LAUNCH(mha_prefill, stream, num_tiles, " tiles x ", heads, " heads");
}

}  // namespace dsserve::backend::cuda
