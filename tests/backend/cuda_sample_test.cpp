// Greedy picks on the device against a host reference written here (not runtime::argmax, which
// the CPU-side engine tests compare with): the first index of the largest non-NaN value, 0 when
// the first value is NaN or the row is all NaN. Rows of the real vocabulary (129,280) and of odd
// widths (rows then start off 16-byte boundaries), 1 to 256 rows picked out of order, planted
// ties across threads and warps, -inf, +inf, NaN, signed zeros and denormals. Draws at
// temperature > 0 against the host sampler itself (runtime::pick with the same canonical), which
// they must match up to rounding, and never leave its support. Runs only where a CUDA device is
// visible (ctest label gpu).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <memory>
#include <numeric>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "backend/cuda/cuda_ops.h"
#include "runtime/sampler.h"

namespace dsserve::backend::cuda {
namespace {

using model::Tensor;

constexpr int kVocab = 129280;
constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

std::int32_t reference_argmax(const float* x, std::int64_t n) {
    if (std::isnan(x[0])) {
        return 0;
    }
    float best = x[0];
    for (std::int64_t i = 1; i < n; ++i) {
        if (!std::isnan(x[i])) {
            best = std::max(best, x[i]);
        }
    }
    for (std::int64_t i = 0; i < n; ++i) {
        if (x[i] == best) {
            return static_cast<std::int32_t>(i);
        }
    }
    return 0;
}

class CudaSampleTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (cuda_device_count() == 0) {
            GTEST_SKIP() << "no CUDA device";
        }
        gpu_ = std::make_unique<CudaOps>(0);
    }

    // Picks `rows` of logits through the device, in a shuffled order that skips some rows, and
    // checks every one against the reference; also checks rows_to_host on the same list.
    void check(const Tensor& logits, int rows) {
        std::vector<std::int64_t> list(static_cast<std::size_t>(logits.rows()));
        std::iota(list.begin(), list.end(), 0);
        std::shuffle(list.begin(), list.end(), rng_);
        list.resize(static_cast<std::size_t>(rows));
        Tensor d = logits;
        gpu_->to_device(d);
        const std::vector<std::int32_t> got = gpu_->argmax_rows(d, list);
        ASSERT_EQ(got.size(), list.size());
        for (std::size_t i = 0; i < list.size(); ++i) {
            EXPECT_EQ(got[i], reference_argmax(logits.row(list[i]), logits.cols()))
                << "row " << list[i] << " of " << logits.rows() << " x " << logits.cols();
        }
        const Tensor copied = gpu_->rows_to_host(d, list);
        ASSERT_EQ(copied.shape, (std::vector<std::int64_t>{rows, logits.cols()}));
        for (std::size_t i = 0; i < list.size(); ++i) {
            const auto r = static_cast<std::int64_t>(i);
            EXPECT_TRUE(std::equal(
                copied.row(r), copied.row(r) + logits.cols(), logits.row(list[i]),
                [](float a, float b) { return a == b || (std::isnan(a) && std::isnan(b)); }))
                << "copied row " << list[i];
        }
    }

    Tensor random(std::int64_t rows, std::int64_t cols) {
        Tensor t(rows, cols);
        std::normal_distribution<float> nd(0.0f, 3.0f);
        for (float& v : t.data) {
            v = nd(rng_);
        }
        return t;
    }

    std::mt19937 rng_{20260301};
    std::unique_ptr<CudaOps> gpu_;
};

TEST_F(CudaSampleTest, RandomRowsOfTheFullVocabulary) {
    for (int rows : {1, 2, 3, 7, 64, 255, 256}) {
        check(random(rows + 3, kVocab), rows);
    }
}

// The best value planted twice per row, the copies in different threads, warps or float4
// lanes of the kernel; the lower index must win. Values rounded to a quarter tie everywhere.
TEST_F(CudaSampleTest, TiesGoToTheLowerIndex) {
    Tensor t = random(256, kVocab);
    std::uniform_int_distribution<int> pos(0, kVocab - 1);
    for (std::int64_t r = 0; r < t.rows(); ++r) {
        float* x = t.row(r);
        int a = pos(rng_), b = pos(rng_);
        switch (r % 4) {
            case 1:
                b = std::min(kVocab - 1, a + 1);  // neighbours: the same float4, or the next
                break;
            case 2:
                b = std::min(kVocab - 1, a + 4 * 512);  // the same thread, the next round
                break;
            case 3:
                a = 0;
                b = kVocab - 1;
                break;
            default:
                break;
        }
        x[a] = 100.0f;
        x[b] = 100.0f;
    }
    check(t, 256);
    Tensor coarse = random(64, kVocab);
    for (float& v : coarse.data) {
        v = std::round(v * 4.0f) / 4.0f;
    }
    check(coarse, 64);
}

TEST_F(CudaSampleTest, InfinitiesNaNsZerosAndDenormals) {
    const float denorm = std::numeric_limits<float>::denorm_min();
    std::vector<std::vector<float>> cases;
    auto row = [&](float fill) { return std::vector<float>(kVocab, fill); };
    cases.push_back(row(-kInf));  // all -inf: 0
    {
        auto x = row(-kInf);  // one finite value at the very end
        x[kVocab - 1] = -1e30f;
        cases.push_back(x);
    }
    {
        auto x = row(-1.0f);  // +inf twice: the first
        x[500] = kInf;
        x[70000] = kInf;
        cases.push_back(x);
    }
    {
        auto x = row(0.5f);  // NaN first: 0, though a larger value follows
        x[0] = kNaN;
        x[9] = 3.0f;
        cases.push_back(x);
    }
    {
        auto x = row(0.5f);  // NaNs elsewhere never win
        x[1] = kNaN;
        x[77] = 2.0f;
        x[78] = kNaN;
        x[kVocab - 1] = kNaN;
        cases.push_back(x);
    }
    cases.push_back(row(kNaN));  // all NaN: 0
    {
        auto x = row(-1.0f);  // -0.0 equals +0.0: the first of them
        x[300] = -0.0f;
        x[200] = 0.0f;
        x[100] = -0.0f;
        cases.push_back(x);
    }
    {
        auto x = row(-1.0f);  // denormals compare as numbers, not as zero
        x[10] = 0.0f;
        x[20] = denorm;
        x[30] = 2 * denorm;
        cases.push_back(x);
    }
    {
        auto x = row(1.0f);  // all equal: 0
        cases.push_back(x);
    }
    {
        auto x = row(-kInf);  // -inf and NaN only: the first -inf
        x[0] = -kInf;
        x[1] = kNaN;
        cases.push_back(x);
    }
    Tensor t(static_cast<std::int64_t>(cases.size()), kVocab);
    for (std::size_t i = 0; i < cases.size(); ++i) {
        std::copy(cases[i].begin(), cases[i].end(), t.row(static_cast<std::int64_t>(i)));
    }
    // The expected answers, spelled out: the reference itself is under test here too.
    const std::vector<std::int32_t> want = {0, kVocab - 1, 500, 0, 77, 0, 100, 30, 0, 0};
    ASSERT_EQ(want.size(), cases.size());
    for (std::size_t i = 0; i < cases.size(); ++i) {
        EXPECT_EQ(reference_argmax(t.row(static_cast<std::int64_t>(i)), kVocab), want[i]) << i;
    }
    std::vector<std::int64_t> all(cases.size());
    std::iota(all.begin(), all.end(), 0);
    Tensor d = t;
    gpu_->to_device(d);
    EXPECT_EQ(gpu_->argmax_rows(d, all), want);
}

// Widths that are not a multiple of four: most rows start off a 16-byte boundary, so the kernel
// takes its scalar head and tail; tiny widths have no float4 at all.
TEST_F(CudaSampleTest, RowsOffSixteenByteBoundaries) {
    for (int vocab : {1, 2, 3, 5, 7, 129, 2049, kVocab + 1, kVocab + 3}) {
        Tensor t = random(9, vocab);
        // The best value in the head, the body or the tail of some row.
        t.row(1)[0] = 50.0f;
        t.row(2)[vocab - 1] = 50.0f;
        t.row(3)[std::min(vocab - 1, 2)] = 50.0f;
        check(t, 9);
    }
}

TEST_F(CudaSampleTest, NoRowsAndRepeatedRows) {
    Tensor t = random(4, kVocab);
    Tensor d = t;
    gpu_->to_device(d);
    EXPECT_TRUE(gpu_->argmax_rows(d, {}).empty());
    EXPECT_EQ(gpu_->rows_to_host(d, {}).rows(), 0);
    const std::vector<std::int64_t> list = {2, 2, 0};
    const std::int32_t r2 = reference_argmax(t.row(2), kVocab),
                       r0 = reference_argmax(t.row(0), kVocab);
    EXPECT_EQ(gpu_->argmax_rows(d, list), (std::vector<std::int32_t>{r2, r2, r0}));
}

// The draws' params, as the host sampler takes them.
runtime::SamplingParams draw_params(const model::RowSampling& r) {
    runtime::SamplingParams p;
    p.temperature = r.temperature;
    p.top_k = r.top_k;
    p.top_p = r.top_p;
    p.min_p = r.min_p;
    return p;
}

std::string describe(const model::RowSampling& r) {
    return "row " + std::to_string(r.row) + " T=" + std::to_string(r.temperature) +
           " top_k=" + std::to_string(r.top_k) + " top_p=" + std::to_string(r.top_p) +
           " min_p=" + std::to_string(r.min_p) + " canonical=" + std::to_string(r.canonical);
}

class CudaDrawTest : public CudaSampleTest {
protected:
    // Every combination of the params below on every row of `logits`, `draws` canonicals each
    // (the ends of [0, 1) among them), all in one launch. Each pick must lie in the host's
    // support; returns how many equal the host's pick, and adds to `total` the draws compared.
    // The draw just under 1 is not compared: it falls past all but the last tokens' weight,
    // where the host's own rounding picks which tiny tail token it gets.
    std::size_t agreeing(const Tensor& logits, int draws, std::size_t& total) {
        std::uniform_real_distribution<double> uniform(0.0, 1.0);
        std::vector<model::RowSampling> list;
        for (std::int64_t r = 0; r < logits.rows(); ++r) {
            for (float t : {0.3f, 1.0f, 1.7f}) {
                for (int k : {1, 20, -1}) {
                    for (float top_p : {0.1f, 0.9f, 1.0f}) {
                        for (float min_p : {0.0f, 0.1f}) {
                            for (int d = 0; d < draws; ++d) {
                                double c = uniform(rng64_);
                                if (d == 0) {
                                    c = 0.0;
                                } else if (d == 1) {
                                    c = std::nextafter(1.0, 0.0);
                                }
                                list.push_back({r, t, k, top_p, min_p, c});
                            }
                        }
                    }
                }
            }
        }
        std::shuffle(list.begin(), list.end(), rng_);
        Tensor d = logits;
        gpu_->to_device(d);
        const auto got = gpu_->sample_rows(d, list);
        EXPECT_TRUE(got.has_value());
        if (!got) {
            return 0;
        }
        EXPECT_EQ(got->size(), list.size());
        const auto vocab = static_cast<std::size_t>(logits.cols());
        std::size_t agree = 0;
        for (std::size_t i = 0; i < list.size() && i < got->size(); ++i) {
            const model::RowSampling& r = list[i];
            const std::span<const float> row(logits.row(r.row), vocab);
            const auto p = draw_params(r);
            const std::int32_t want = runtime::pick(row, p, r.canonical);
            const std::int32_t token = (*got)[i];
            const bool compared = r.canonical < std::nextafter(1.0, 0.0);
            total += compared ? 1 : 0;
            if (token == want) {
                agree += compared ? 1 : 0;
                continue;
            }
            const auto support = runtime::sampling_support(row, p);
            EXPECT_TRUE(std::binary_search(support.begin(), support.end(), token))
                << describe(r) << ": " << token << " is outside the host's support (host picked "
                << want << ")";
        }
        return agree;
    }

    std::mt19937_64 rng64_{20260302};
};

// Random rows of the full vocabulary and of small odd widths, with planted ties and banned
// (-inf) tokens: at least 99.9% of the draws pick the host's token, and none leaves its
// support. The device sums the weights as integers (2^-45 of the best token's weight) where the
// host adds doubles in its own order, so a draw within rounding of a token's edge may go to its
// neighbour; nothing else may differ.
TEST_F(CudaDrawTest, DrawsMatchTheHostSampler) {
    std::size_t agree = 0, total = 0;
    std::uniform_int_distribution<int> coin(0, 9);
    for (int vocab : {kVocab, 1, 3, 37, 1001, 4099}) {
        Tensor t = random(4, vocab);
        for (std::int64_t r = 0; r < t.rows(); ++r) {
            float* x = t.row(r);
            switch (r) {
                case 1:  // ties everywhere: values on a coarse grid
                    for (int i = 0; i < vocab; ++i) {
                        x[i] = std::round(x[i] * 2.0f) / 2.0f;
                    }
                    break;
                case 2:  // a third of the tokens banned, the best value planted twice
                    for (int i = 0; i < vocab; ++i) {
                        if (coin(rng_) < 3) {
                            x[i] = -kInf;
                        }
                    }
                    x[vocab / 2] = 12.0f;
                    x[vocab - 1] = 12.0f;
                    break;
                case 3:  // peaked: a few tokens far above the rest
                    for (int i = 0; i < vocab; i += 97) {
                        x[i] += 15.0f;
                    }
                    break;
                default:
                    break;
            }
        }
        agree += agreeing(t, vocab == kVocab ? 12 : 40, total);
    }
    std::printf("device draws equal to the host's: %zu of %zu\n", agree, total);
    EXPECT_GE(static_cast<double>(agree), 0.999 * static_cast<double>(total));
}

// Rows where rounding cannot move anything, so every draw must be the host's: n equal logits
// weigh exactly 1 each, and a canonical in the middle of token j's share picks j (top-k and
// top-p keep the lowest ids among equal logits); a row with one finite value, a row of -inf,
// and a row with +inf keep only their best token.
TEST_F(CudaDrawTest, ExactCases) {
    const int vocab = 3001;
    Tensor t(4, vocab);
    std::fill_n(t.row(0), vocab, 0.25f);
    std::fill_n(t.row(1), vocab, -kInf);
    t.row(1)[1777] = -3.0f;
    std::fill_n(t.row(2), vocab, -kInf);
    std::fill_n(t.row(3), vocab, 1.0f);
    t.row(3)[42] = kInf;
    t.row(3)[43] = kInf;
    std::vector<model::RowSampling> list;
    std::vector<std::int32_t> want;
    for (int kept : {vocab, 20, 505}) {
        const int top_k = kept == vocab ? -1 : kept;
        for (int j : {0, 1, kept / 2, kept - 2, kept - 1}) {
            list.push_back({0, 0.8f, top_k, 1.0f, 0.0f, (j + 0.5) / kept});
            want.push_back(j);
        }
    }
    const int by_top_p = 1516;  // the fewest of 3001 equal tokens reaching 0.5049
    for (int j : {0, 700, by_top_p - 1}) {
        list.push_back({0, 1.0f, -1, 0.5049f, 0.0f, (j + 0.5) / by_top_p});
        want.push_back(j);
    }
    for (double c : {0.0, 0.5, std::nextafter(1.0, 0.0)}) {
        list.push_back({1, 1.0f, -1, 0.9f, 0.0f, c});
        want.push_back(1777);
        list.push_back({2, 1.0f, 50, 1.0f, 0.1f, c});
        want.push_back(0);
        list.push_back({3, 1.5f, -1, 0.5f, 0.0f, c});
        want.push_back(42);
    }
    for (std::size_t i = 0; i < list.size(); ++i) {
        const std::span<const float> row(t.row(list[i].row), vocab);
        ASSERT_EQ(runtime::pick(row, draw_params(list[i]), list[i].canonical), want[i])
            << describe(list[i]);
    }
    Tensor d = t;
    gpu_->to_device(d);
    const auto got = gpu_->sample_rows(d, list);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(*got, want);
    EXPECT_EQ(gpu_->sample_rows(d, {}), std::vector<std::int32_t>{});
}

}  // namespace
}  // namespace dsserve::backend::cuda
