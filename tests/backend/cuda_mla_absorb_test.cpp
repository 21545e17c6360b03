// MLA's absorb kernels (launch_absorb_q, launch_absorb_out) against a double-precision host
// reference computed from the dequantized weight. Weights are made on the host in their storage
// (random e4m3 codes with block scales orders of magnitude apart, random BF16 values),
// independently of the backend's quantizer; the reference dequantizes them with core/dtype, one
// float multiply per value, as the CPU backend holds them. The kernels accumulate in float32, so
// each output may differ by relative 1e-5 of the sum of its terms' magnitudes (a bound that a
// scale applied to the wrong block breaks by orders); outputs start as NaN so that one the
// kernels skip fails.
// Runs only where a CUDA device is visible (ctest label gpu).
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/mla_absorb.h"
#include "core/dtype.h"
#include "cuda_device_array.h"

namespace dsserve::backend::cuda {
namespace {

constexpr double kTolerance = 1e-5;

// kv_b_proj in one storage: the bytes the kernels read and the float weight they stand for.
struct HostWeight {
    WeightFormat format;
    std::vector<std::uint8_t> bytes;  // fp8_block: rows padded to 128
    std::vector<float> scales;        // fp8_block: [padded rows / 128][scale_ld]
    int scale_ld = 0;
    std::vector<float> value;  // [rows, lora], dequantized
};

HostWeight make_weight(WeightFormat format, int rows, int lora, std::mt19937& rng) {
    HostWeight w;
    w.format = format;
    w.value.resize(static_cast<std::size_t>(rows) * lora);
    std::normal_distribution<float> nd(0.0f, 0.05f);
    if (format == WeightFormat::fp8_block) {
        const int padded = (rows + 127) / 128 * 128;
        w.scale_ld = static_cast<int>(weight_scale_stride(lora));
        w.bytes.resize(static_cast<std::size_t>(padded) * lora);
        w.scales.resize(static_cast<std::size_t>(padded / 128) * w.scale_ld);
        std::uniform_int_distribution<int> code(0, 255), exponent(-12, 0);
        for (std::uint8_t& b : w.bytes) {
            do {
                b = static_cast<std::uint8_t>(code(rng));
            } while ((b & 0x7f) == 0x7f);  // NaN
        }
        // Scales a few orders apart, so that one applied to the wrong block shows; one past 2^7
        // takes the kernels' other dequantization order.
        for (std::size_t i = 0; i < w.scales.size(); ++i) {
            w.scales[i] = i == 1 ? 300.0f : std::ldexp(1.0f + 0.3f * nd(rng), exponent(rng));
        }
        for (int r = 0; r < rows; ++r) {
            for (int j = 0; j < lora; ++j) {
                const std::size_t at = static_cast<std::size_t>(r) * lora + j;
                w.value[at] = fp8_e4m3_to_float(w.bytes[at]) *
                              w.scales[static_cast<std::size_t>(r / 128 * w.scale_ld + j / 128)];
            }
        }
    } else if (format == WeightFormat::bf16) {
        w.bytes.resize(w.value.size() * 2);
        for (std::size_t i = 0; i < w.value.size(); ++i) {
            const std::uint16_t b = float_to_bf16(nd(rng));
            w.bytes[2 * i] = static_cast<std::uint8_t>(b & 0xff);
            w.bytes[2 * i + 1] = static_cast<std::uint8_t>(b >> 8);
            w.value[i] = bf16_to_float(b);
        }
    } else {
        w.bytes.resize(w.value.size() * 4);
        for (std::size_t i = 0; i < w.value.size(); ++i) {
            w.value[i] = nd(rng);
            std::memcpy(w.bytes.data() + 4 * i, &w.value[i], 4);
        }
    }
    return w;
}

std::vector<float> random_vector(std::size_t n, std::mt19937& rng) {
    std::vector<float> v(n);
    std::normal_distribution<float> nd;
    for (float& x : v) {
        x = nd(rng);
    }
    return v;
}

// Dot products in double: the sum, and the sum of its terms' magnitudes.
struct Reference {
    std::vector<double> sum, magnitude;
    explicit Reference(std::size_t n) : sum(n, 0.0), magnitude(n, 0.0) {}
    void add(std::size_t i, double x, double w) {
        sum[i] += x * w;
        magnitude[i] += std::abs(x * w);
    }
};

// max |got - want| / (sum of the terms' magnitudes); a NaN anywhere fails.
double rel_diff(const std::vector<float>& got, const Reference& want) {
    double worst = 0.0;
    for (std::size_t i = 0; i < want.sum.size(); ++i) {
        if (!std::isfinite(got[i])) {
            return INFINITY;
        }
        const double diff = std::abs(double{got[i]} - want.sum[i]);
        worst = std::max(worst, want.magnitude[i] > 0.0 ? diff / want.magnitude[i] : diff);
    }
    return worst;
}

struct Device {
    explicit Device(const HostWeight& w)
        : bytes(w.bytes), scales(w.scales.empty() ? std::vector<float>{0.0f} : w.scales) {}
    AbsorbWeight weight(const HostWeight& w) const {
        return AbsorbWeight{w.format, bytes.get(),
                            w.format == WeightFormat::fp8_block ? scales.get() : nullptr,
                            w.scale_ld};
    }
    DeviceArray<std::uint8_t> bytes;
    DeviceArray<float> scales;
};

class AbsorbTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (cuda_device_count() == 0) {
            GTEST_SKIP() << "no CUDA device";
        }
    }

    // Both kernels at every token count, against the reference.
    void check(WeightFormat format, const AbsorbShape& base, const std::vector<int>& token_counts) {
        const int heads = base.heads, nope = base.nope, v = base.v, lora = base.lora;
        const int qk = nope + base.rope, rows = heads * (nope + v);
        const HostWeight w = make_weight(format, rows, lora, rng_);
        const Device dev(w);
        for (int tokens : token_counts) {
            AbsorbShape shape = base;
            shape.tokens = tokens;
            ASSERT_TRUE(absorb_supports(format, shape));
            const auto q = random_vector(static_cast<std::size_t>(tokens) * heads * qk, rng_);
            const auto o_lat = random_vector(static_cast<std::size_t>(tokens) * heads * lora, rng_);
            Reference want_q(static_cast<std::size_t>(tokens) * heads * lora);
            Reference want_out(static_cast<std::size_t>(tokens) * heads * v);
            for (int t = 0; t < tokens; ++t) {
                for (int h = 0; h < heads; ++h) {
                    const auto th = static_cast<std::size_t>(t) * heads + h;
                    const float* wk =
                        w.value.data() + static_cast<std::size_t>(h) * (nope + v) * lora;
                    for (int d = 0; d < nope; ++d) {
                        const double x = q[th * qk + d];
                        for (int j = 0; j < lora; ++j) {
                            want_q.add(th * lora + j, x,
                                       wk[static_cast<std::size_t>(d) * lora + j]);
                        }
                    }
                    for (int d = 0; d < v; ++d) {
                        const float* wv = wk + static_cast<std::size_t>(nope + d) * lora;
                        for (int j = 0; j < lora; ++j) {
                            want_out.add(th * v + d, o_lat[th * lora + j], wv[j]);
                        }
                    }
                }
            }
            const DeviceArray<float> dq(q), dol(o_lat);
            DeviceArray<float> dq_lat(std::vector<float>(want_q.sum.size())),
                dout(std::vector<float>(want_out.sum.size()));
            dq_lat.poison();
            dout.poison();
            launch_absorb_q(dev.weight(w), shape, dq.get(), dq_lat.get(), nullptr);
            launch_absorb_out(dev.weight(w), shape, dol.get(), dout.get(), nullptr);
            check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
            EXPECT_LE(rel_diff(dq_lat.to_host(), want_q), kTolerance)
                << "absorb_q, format " << static_cast<int>(format) << ", " << tokens << " tokens";
            EXPECT_LE(rel_diff(dout.to_host(), want_out), kTolerance)
                << "absorb_out, format " << static_cast<int>(format) << ", " << tokens << " tokens";
        }
    }

    std::mt19937 rng_{11};
};

const std::vector<int> kTokenCounts = {1, 3, 16, 64, 200};

// DeepSeek-V3.2: 128 heads, nope 128, rope 64, v 128, lora 512.
TEST_F(AbsorbTest, OfficialShapeFp8) {
    check(WeightFormat::fp8_block, AbsorbShape{0, 128, 128, 64, 128, 512}, kTokenCounts);
}

TEST_F(AbsorbTest, OfficialShapeBf16) {
    check(WeightFormat::bf16, AbsorbShape{0, 128, 128, 64, 128, 512}, kTokenCounts);
}

// Narrow heads (four rows per warp) whose rows straddle 128-row scale blocks (80 rows a head).
TEST_F(AbsorbTest, SmallOddShape) {
    for (WeightFormat f : {WeightFormat::fp8_block, WeightFormat::bf16, WeightFormat::f32}) {
        check(f, AbsorbShape{0, 4, 32, 16, 48, 256}, kTokenCounts);
    }
}

// Four warps of 16 rows, 104 rows a head, three 128-column slices; and for BF16 a lora that
// leaves the only column slice part empty.
TEST_F(AbsorbTest, OtherShapes) {
    for (WeightFormat f : {WeightFormat::fp8_block, WeightFormat::bf16}) {
        check(f, AbsorbShape{0, 3, 64, 8, 40, 384}, kTokenCounts);
    }
    check(WeightFormat::bf16, AbsorbShape{0, 2, 16, 8, 12, 96}, kTokenCounts);
    check(WeightFormat::f32, AbsorbShape{0, 5, 20, 4, 33, 112}, {1, 7, 70});
}

// Every e4m3 code, subnormals and negative zero included, comes out as exactly the float the host
// dequantizes it to: with one-hot activations every output is one weight. The second row block
// has a scale past 2^7 (the other dequantization order), the first a small one.
TEST_F(AbsorbTest, EveryE4m3CodeDequantizesExactly) {
    const int nope = 128, v = 128, lora = 256, rows = nope + v;
    HostWeight w;
    w.format = WeightFormat::fp8_block;
    w.scale_ld = static_cast<int>(weight_scale_stride(lora));
    w.bytes.resize(static_cast<std::size_t>(rows) * lora);
    w.scales.assign(static_cast<std::size_t>(2 * w.scale_ld), 0.0f);
    w.scales[0] = 0.0123f;
    w.scales[1] = 1.0f;
    w.scales[static_cast<std::size_t>(w.scale_ld)] = 300.0f;
    w.scales[static_cast<std::size_t>(w.scale_ld) + 1] = 0x1p-20f;
    for (int r = 0; r < rows; ++r) {
        for (int j = 0; j < lora; ++j) {
            auto code = static_cast<std::uint8_t>((r * 7 + j) & 0xff);
            w.bytes[static_cast<std::size_t>(r) * lora + j] = (code & 0x7f) == 0x7f ? 0 : code;
        }
    }
    auto value = [&](int r, int j) {
        return fp8_e4m3_to_float(w.bytes[static_cast<std::size_t>(r) * lora + j]) *
               w.scales[static_cast<std::size_t>(r / 128 * w.scale_ld + j / 128)];
    };
    const Device dev(w);
    // absorb_q: token t's query is e_t over the nope dims, so q_lat[t] is W_UK row t.
    {
        const AbsorbShape shape{nope, 1, nope, 0, v, lora};
        std::vector<float> q(static_cast<std::size_t>(nope) * nope, 0.0f);
        for (int t = 0; t < nope; ++t) {
            q[static_cast<std::size_t>(t) * nope + t] = 1.0f;
        }
        const DeviceArray<float> dq(q);
        DeviceArray<float> dq_lat(std::vector<float>(static_cast<std::size_t>(nope) * lora));
        dq_lat.poison();
        launch_absorb_q(dev.weight(w), shape, dq.get(), dq_lat.get(), nullptr);
        const std::vector<float> got = dq_lat.to_host();
        int wrong = 0;
        for (int t = 0; t < nope; ++t) {
            for (int j = 0; j < lora; ++j) {
                wrong += got[static_cast<std::size_t>(t) * lora + j] != value(t, j);
            }
        }
        EXPECT_EQ(wrong, 0) << "absorb_q";
    }
    // absorb_out: token t's o_lat is e_t, so out[t, d] is W_UV[d][t].
    {
        const AbsorbShape shape{lora, 1, nope, 0, v, lora};
        std::vector<float> o(static_cast<std::size_t>(lora) * lora, 0.0f);
        for (int t = 0; t < lora; ++t) {
            o[static_cast<std::size_t>(t) * lora + t] = 1.0f;
        }
        const DeviceArray<float> dol(o);
        DeviceArray<float> dout(std::vector<float>(static_cast<std::size_t>(lora) * v));
        dout.poison();
        launch_absorb_out(dev.weight(w), shape, dol.get(), dout.get(), nullptr);
        const std::vector<float> got = dout.to_host();
        int wrong = 0;
        for (int t = 0; t < lora; ++t) {
            for (int d = 0; d < v; ++d) {
                wrong += got[static_cast<std::size_t>(t) * v + d] != value(nope + d, t);
            }
        }
        EXPECT_EQ(wrong, 0) << "absorb_out";
    }
}

}  // namespace
}  // namespace dsserve::backend::cuda
