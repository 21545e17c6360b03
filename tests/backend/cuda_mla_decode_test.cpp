// The split-key MLA decode kernels against launch_mla_attend (itself checked against the CPU
// backend) and against a double-precision host reference, on random inputs with DeepSeek-V3.2's
// latent shape (lora 512, rope 64): batches of 1 to 64 tokens, 16 or 128 heads, and key counts
// from 0 to 2048 that differ per token, over distinct random slots of a 4096-row cache, with the
// cache in float32 and in bfloat16. Tolerances, relative to the output's magnitude: 1e-4 wherever
// the arithmetic is float32 (either kernel over a float32 cache; launch_mla_attend over a BF16 one
// against a reference over the same rounded cache values). The tensor-core kernel also rounds
// queries and probabilities to bfloat16: against a reference that rounds the queries the same
// way, 4e-3 (the probabilities' rounding, 2^-9 relative, is what remains); against
// launch_mla_attend, 2e-2. Runs only where a CUDA device is visible (ctest label gpu).
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/mla_decode.h"
#include "core/dtype.h"
#include "core/error.h"
#include "cuda_device_array.h"

namespace dsserve::backend::cuda {
namespace {

constexpr int kLora = 512, kRope = 64, kNope = 128, kQk = kNope + kRope, kCacheRows = 4096;
constexpr double kTolerance = 1e-4;
constexpr double kBf16VsHost = 4e-3, kBf16VsAttend = 2e-2;

float round_bf16(float x) {
    return bf16_to_float(float_to_bf16(x));
}

struct Inputs {
    CacheFormat format = CacheFormat::f32;
    int tokens, heads;
    std::vector<float> q_lat, q, latent, k_rope;
    std::vector<std::int32_t> keys, offset, count;
    int max_keys = 0;
    MlaShape shape() const {
        return MlaShape{tokens, heads, kLora, kRope, kNope, kQk, 1.0f / std::sqrt(float{kQk})};
    }
};

// With a BF16 cache the host keeps the rounded values, which the device then holds exactly.
Inputs make_inputs(CacheFormat format, int tokens, int heads, const std::vector<int>& counts,
                   std::mt19937& rng) {
    Inputs in;
    in.format = format;
    in.tokens = tokens;
    in.heads = heads;
    std::normal_distribution<float> nd(0.0f, 1.0f);
    auto fill = [&](std::vector<float>& v, std::size_t n) {
        v.resize(n);
        for (float& x : v) {
            x = nd(rng);
        }
    };
    const auto rows = static_cast<std::size_t>(tokens) * static_cast<std::size_t>(heads);
    fill(in.q_lat, rows * kLora);
    fill(in.q, rows * kQk);
    fill(in.latent, std::size_t{kCacheRows} * kLora);
    fill(in.k_rope, std::size_t{kCacheRows} * kRope);
    if (format == CacheFormat::bf16) {
        for (auto* v : {&in.latent, &in.k_rope}) {
            std::transform(v->begin(), v->end(), v->begin(), round_bf16);
        }
    }
    std::vector<std::int32_t> slots(kCacheRows);
    std::iota(slots.begin(), slots.end(), 0);
    for (int t = 0; t < tokens; ++t) {
        const int n = counts[static_cast<std::size_t>(t)];
        std::shuffle(slots.begin(), slots.end(), rng);
        in.offset.push_back(static_cast<std::int32_t>(in.keys.size()));
        in.count.push_back(n);
        in.keys.insert(in.keys.end(), slots.begin(), slots.begin() + n);
        in.max_keys = std::max(in.max_keys, n);
    }
    return in;
}

// o_lat for (t, h), in double; round_q: with the query rounded to bfloat16 first.
std::vector<double> reference(const Inputs& in, int t, int h, bool round_q) {
    const auto row = static_cast<std::size_t>(t) * static_cast<std::size_t>(in.heads) +
                     static_cast<std::size_t>(h);
    std::vector<float> ql(in.q_lat.begin() + static_cast<std::ptrdiff_t>(row * kLora),
                          in.q_lat.begin() + static_cast<std::ptrdiff_t>((row + 1) * kLora));
    std::vector<float> qr(in.q.begin() + static_cast<std::ptrdiff_t>(row * kQk + kNope),
                          in.q.begin() + static_cast<std::ptrdiff_t>((row + 1) * kQk));
    if (round_q) {
        for (auto* v : {&ql, &qr}) {
            std::transform(v->begin(), v->end(), v->begin(), round_bf16);
        }
    }
    const auto n = static_cast<std::size_t>(in.count[static_cast<std::size_t>(t)]);
    const std::int32_t* slots = in.keys.data() + in.offset[static_cast<std::size_t>(t)];
    std::vector<double> score(n);
    double mx = -std::numeric_limits<double>::infinity();
    for (std::size_t j = 0; j < n; ++j) {
        const auto slot = static_cast<std::size_t>(slots[j]);
        double dot = 0.0;
        for (int d = 0; d < kLora; ++d) {
            dot += double{ql[d]} * in.latent[slot * kLora + static_cast<std::size_t>(d)];
        }
        for (int d = 0; d < kRope; ++d) {
            dot += double{qr[d]} * in.k_rope[slot * kRope + static_cast<std::size_t>(d)];
        }
        score[j] = dot * double{in.shape().scale};
        mx = std::max(mx, score[j]);
    }
    std::vector<double> out(kLora, 0.0);
    double sum = 0.0;
    for (std::size_t j = 0; j < n; ++j) {
        const double p = std::exp(score[j] - mx);
        sum += p;
        const float* c = in.latent.data() + static_cast<std::size_t>(slots[j]) * kLora;
        for (int d = 0; d < kLora; ++d) {
            out[static_cast<std::size_t>(d)] += p * c[d];
        }
    }
    for (double& v : out) {
        v = n > 0 ? v / sum : 0.0;
    }
    return out;
}

struct Outputs {
    std::vector<float> decode, attend;
};

std::vector<std::uint16_t> to_bf16(const std::vector<float>& v) {
    std::vector<std::uint16_t> out(v.size());
    std::transform(v.begin(), v.end(), out.begin(), float_to_bf16);
    return out;
}

Outputs run_both(const Inputs& in) {
    DeviceArray<float> q_lat(in.q_lat), q(in.q), latent32(in.latent), k_rope32(in.k_rope);
    DeviceArray<std::uint16_t> latent16(to_bf16(in.latent)), k_rope16(to_bf16(in.k_rope));
    const bool bf16 = in.format == CacheFormat::bf16;
    const void* latent = bf16 ? static_cast<const void*>(latent16.get()) : latent32.get();
    const void* k_rope = bf16 ? static_cast<const void*>(k_rope16.get()) : k_rope32.get();
    DeviceArray<std::int32_t> keys(in.keys), offset(in.offset), count(in.count);
    const std::size_t n_out = static_cast<std::size_t>(in.tokens) * in.heads * kLora;
    DeviceArray<float> decode(n_out), attend(n_out);
    decode.poison();
    attend.poison();
    const MlaShape shape = in.shape();
    const std::size_t ws_bytes = mla_decode_workspace_bytes(shape, in.max_keys, in.format);
    DeviceArray<unsigned char> workspace(ws_bytes);
    workspace.poison();
    launch_mla_decode(q_lat.get(), q.get(), in.format, latent, k_rope, keys.get(), offset.get(),
                      count.get(), shape, in.max_keys, ws_bytes > 0 ? workspace.get() : nullptr,
                      decode.get(), nullptr);
    launch_mla_attend(q_lat.get(), q.get(), in.format, latent, k_rope, keys.get(), offset.get(),
                      count.get(), shape, attend.get(), nullptr);
    check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
    return {decode.to_host(), attend.to_host()};
}

// max |a - b| / max(1, max |b|) over the rows of (t, h) where pick(t, h); a NaN or infinity in a
// counts as infinitely far.
template <typename Ref, typename Pick>
double max_rel_diff(const Inputs& in, const std::vector<float>& a, Ref ref, Pick pick) {
    double diff = 0.0, mag = 1.0;
    for (int t = 0; t < in.tokens; ++t) {
        for (int h = 0; h < in.heads; ++h) {
            if (!pick(t, h)) {
                continue;
            }
            const auto& b = ref(t, h);
            const std::size_t base = (static_cast<std::size_t>(t) * in.heads + h) * kLora;
            for (std::size_t d = 0; d < kLora; ++d) {
                const double x = a[base + d];
                diff = std::isfinite(x) ? std::max(diff, std::abs(x - b[d]))
                                        : std::numeric_limits<double>::infinity();
                mag = std::max(mag, std::abs(b[d]));
            }
        }
    }
    return diff / mag;
}

// Checks decode against attend on every output and against the host on a sample of heads (all
// heads up to 512 rows, else about one row in eight, a different head set for every token).
void check(const Inputs& in, const std::string& what) {
    const Outputs out = run_both(in);
    const auto all = [](int, int) { return true; };
    const auto attend_row = [&](int t, int h) {
        const std::size_t base = (static_cast<std::size_t>(t) * in.heads + h) * kLora;
        return std::vector<double>(out.attend.begin() + static_cast<std::ptrdiff_t>(base),
                                   out.attend.begin() + static_cast<std::ptrdiff_t>(base + kLora));
    };
    const bool bf16 = in.format == CacheFormat::bf16;
    const double vs_attend = max_rel_diff(in, out.decode, attend_row, all);
    EXPECT_LE(vs_attend, bf16 ? kBf16VsAttend : kTolerance) << what << " vs attend";
    const int stride = in.tokens * in.heads <= 512 ? 1 : 8;
    const auto sample = [&](int t, int h) { return (h + t) % stride == 0; };
    // exact[i]: the query as given; rounded[i]: rounded to bfloat16, as the tensor cores see it.
    std::vector<std::vector<double>> exact(static_cast<std::size_t>(in.tokens) * in.heads);
    auto rounded = exact;
    for (int t = 0; t < in.tokens; ++t) {
        for (int h = 0; h < in.heads; ++h) {
            if (sample(t, h)) {
                const auto i = static_cast<std::size_t>(t) * in.heads + h;
                exact[i] = reference(in, t, h, false);
                if (bf16) {
                    rounded[i] = reference(in, t, h, true);
                }
            }
        }
    }
    const auto row_of = [&](const std::vector<std::vector<double>>& rows) {
        return [&rows, &in](int t, int h) -> const std::vector<double>& {
            return rows[static_cast<std::size_t>(t) * in.heads + h];
        };
    };
    const double vs_host = max_rel_diff(in, out.decode, row_of(bf16 ? rounded : exact), sample);
    EXPECT_LE(vs_host, bf16 ? kBf16VsHost : kTolerance) << what << " vs host";
    EXPECT_LE(max_rel_diff(in, out.attend, row_of(exact), sample), kTolerance)
        << what << " attend vs host";
    if (bf16) {
        std::printf("%s: bf16 decode vs host %.2e, vs attend %.2e\n", what.c_str(), vs_host,
                    vs_attend);
    }
    // A token without keys gets exact zeros.
    for (int t = 0; t < in.tokens; ++t) {
        if (in.count[static_cast<std::size_t>(t)] != 0) {
            continue;
        }
        const std::size_t base = static_cast<std::size_t>(t) * in.heads * kLora;
        for (std::size_t i = 0; i < static_cast<std::size_t>(in.heads) * kLora; ++i) {
            ASSERT_EQ(out.decode[base + i], 0.0f) << what << " token " << t;
        }
    }
}

const std::vector<int> kCounts = {0, 1, 31, 33, 1000, 2048};

class CudaMlaDecodeTest : public ::testing::TestWithParam<CacheFormat> {
protected:
    void SetUp() override {
        if (cuda_device_count() == 0) {
            GTEST_SKIP() << "no CUDA device";
        }
    }
    Inputs make(int tokens, int heads, const std::vector<int>& counts) {
        return make_inputs(GetParam(), tokens, heads, counts, rng_);
    }
    std::mt19937 rng_{11};
};

TEST_P(CudaMlaDecodeTest, OneTokenEveryKeyCount) {
    for (int heads : {16, 128}) {
        for (int n : kCounts) {
            check(make(1, heads, {n}), str_cat("1 token, ", heads, " heads, ", n, " keys"));
        }
    }
}

TEST_P(CudaMlaDecodeTest, BatchesWithKeyCountsDifferingPerToken) {
    for (int tokens : {3, 17, 64}) {
        for (int heads : {16, 128}) {
            std::vector<int> counts;
            for (int t = 0; t < tokens; ++t) {
                counts.push_back(
                    kCounts[static_cast<std::size_t>(t * 5 + tokens / 2) % kCounts.size()]);
            }
            check(make(tokens, heads, counts), str_cat(tokens, " tokens, ", heads, " heads"));
        }
    }
}

TEST_P(CudaMlaDecodeTest, HeadsNotAMultipleOfTheHeadGroup) {
    for (int heads : {1, 20, 40, 72}) {
        check(make(3, heads, {2048, 33, 1000}), str_cat("3 tokens, ", heads, " heads"));
    }
}

// Other latent widths take launch_mla_attend for either cache.
TEST_P(CudaMlaDecodeTest, WorkspaceFollowsTheSplitPolicy) {
    const float scale = 0.1f;
    const CacheFormat f = GetParam();
    EXPECT_EQ(mla_decode_workspace_bytes({64, 128, kLora, kRope, kNope, kQk, scale}, 2048, f), 0u);
    EXPECT_EQ(mla_decode_workspace_bytes({1, 128, kLora, kRope, kNope, kQk, scale}, 32, f), 0u);
    const std::size_t one =
        mla_decode_workspace_bytes({1, 128, kLora, kRope, kNope, kQk, scale}, 2048, f);
    EXPECT_GT(one, 0u);
    EXPECT_EQ(one % (128 * (kLora + 2) * sizeof(float)), 0u);
    EXPECT_EQ(mla_decode_workspace_bytes({1, 128, 256, kRope, kNope, kQk, scale}, 2048, f), 0u);
}

INSTANTIATE_TEST_SUITE_P(Caches, CudaMlaDecodeTest,
                         ::testing::Values(CacheFormat::f32, CacheFormat::bf16),
                         [](const auto& param_info) {
                             return param_info.param == CacheFormat::bf16 ? "bf16" : "f32";
                         });

}  // namespace
}  // namespace dsserve::backend::cuda
