// The tiled FP8 expert GEMM (moe_gemm.h) against products computed here in double precision.
// With operands of -1, 0 and 1 and power-of-two scales every partial sum is a small integer,
// which any accumulator holds exactly: the kernel must then match to the last bit, so that a
// misplaced row, chunk, tile, segment or scale cannot hide behind rounding. Random operands
// measure how far the tensor cores' FP8 accumulation moves a product. Runs only where a CUDA
// device is visible (ctest label gpu).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <vector>

#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/moe_gemm.h"
#include "backend/cuda/topk.h"
#include "core/dtype.h"
#include "cuda_device_array.h"

namespace dsserve::backend::cuda {
namespace {

constexpr int kExperts = 3, kSegments = 2, kN = 256, kK = 384, kBlocks = kK / 128;
// Expert 0 has two row tiles, expert 1 none, expert 2 one; the launch is told of two more.
const std::vector<std::int32_t> kTileExpert{0, 0, 2};
constexpr int kMaxTiles = 5;
constexpr int kRows = kMaxTiles * kMoeTileRows;

class CudaMoeGemmTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (cuda_device_count() == 0) {
            GTEST_SKIP() << "no CUDA device";
        }
    }

    // Operands: e4m3 codes with their scales, drawn by `value` and `scale`.
    template <typename Value, typename Scale>
    void draw(Value value, Scale scale) {
        a8.resize(static_cast<std::size_t>(kRows) * kK);
        as.resize(static_cast<std::size_t>(kRows) * kBlocks);
        for (auto& v : a8) {
            v = float_to_fp8_e4m3(value());
        }
        for (auto& s : as) {
            s = scale();
        }
        const auto ld = static_cast<std::size_t>(weight_scale_stride(kK));
        w8.assign(kExperts * kSegments, std::vector<std::uint8_t>(std::size_t{kN} * kK));
        ws.assign(kExperts * kSegments, std::vector<float>(kN / 128 * ld, NAN));
        for (int m = 0; m < kExperts * kSegments; ++m) {
            for (auto& v : w8[static_cast<std::size_t>(m)]) {
                v = float_to_fp8_e4m3(value());
            }
            for (std::size_t b = 0; b < kN / 128; ++b) {
                for (std::size_t kb = 0; kb < kBlocks; ++kb) {
                    ws[static_cast<std::size_t>(m)][b * ld + kb] = scale();
                }
            }
        }
    }

    // y[r, s n + j] in double: each 128-value block's dot product times both scales.
    double expected(int r, int s, int j) const {
        const int e = kTileExpert[static_cast<std::size_t>(r / kMoeTileRows)];
        const auto& w = w8[static_cast<std::size_t>(e * kSegments + s)];
        const auto& sc = ws[static_cast<std::size_t>(e * kSegments + s)];
        const auto ld = static_cast<std::size_t>(weight_scale_stride(kK));
        double sum = 0.0;
        for (int kb = 0; kb < kBlocks; ++kb) {
            double dot = 0.0;
            for (int k = kb * 128; k < (kb + 1) * 128; ++k) {
                dot += static_cast<double>(
                           fp8_e4m3_to_float(a8[static_cast<std::size_t>(r) * kK + k])) *
                       fp8_e4m3_to_float(w[static_cast<std::size_t>(j) * kK + k]);
            }
            sum += dot * as[static_cast<std::size_t>(r) * kBlocks + kb] *
                   sc[static_cast<std::size_t>(j / 128) * ld + kb];
        }
        return sum;
    }

    // Runs the kernel; returns y [kRows][kSegments * kN] (rows past the tiles as left: NaN).
    std::vector<float> run() const {
        DeviceArray<std::uint8_t> d_a8(a8);
        DeviceArray<float> d_as(as);
        std::vector<std::unique_ptr<DeviceArray<std::uint8_t>>> d_w8;
        std::vector<std::unique_ptr<DeviceArray<float>>> d_ws;
        std::vector<const void*> table;
        std::vector<const float*> scales;
        for (std::size_t m = 0; m < w8.size(); ++m) {
            d_w8.push_back(std::make_unique<DeviceArray<std::uint8_t>>(w8[m]));
            d_ws.push_back(std::make_unique<DeviceArray<float>>(ws[m]));
            table.push_back(d_w8.back()->get());
            scales.push_back(d_ws.back()->get());
        }
        DeviceArray<const void*> d_table(table);
        DeviceArray<const float*> d_scales(scales);
        DeviceArray<std::int32_t> d_tiles(
            std::vector<std::int32_t>{static_cast<std::int32_t>(kTileExpert.size())}),
            d_tile_expert(kTileExpert);
        DeviceArray<float> y(static_cast<std::size_t>(kRows) * kSegments * kN);
        y.poison();
        MoeGemmWeights w;
        w.table = d_table.get();
        w.scales = d_scales.get();
        w.segments = kSegments;
        w.n = kN;
        w.scale_ld = static_cast<int>(weight_scale_stride(kK));
        launch_moe_gemm_fp8(d_a8.get(), d_as.get(), kK, d_tiles.get(), d_tile_expert.get(),
                            kMaxTiles, w, y.get(), kSegments * kN, nullptr);
        return y.to_host();
    }

    std::vector<std::uint8_t> a8;
    std::vector<float> as;
    std::vector<std::vector<std::uint8_t>> w8;
    std::vector<std::vector<float>> ws;
    std::mt19937 rng{5};
};

TEST_F(CudaMoeGemmTest, SmallIntegerProductsAreExact) {
    std::uniform_int_distribution<int> ternary(-1, 1), exponent(-3, 3);
    draw([&] { return static_cast<float>(ternary(rng)); },
         [&] { return std::ldexp(1.0f, exponent(rng)); });
    const std::vector<float> y = run();
    const int rows = static_cast<int>(kTileExpert.size()) * kMoeTileRows;
    int wrong = 0, nonzero = 0;
    for (int r = 0; r < kRows; ++r) {
        for (int c = 0; c < kSegments * kN; ++c) {
            const float got = y[static_cast<std::size_t>(r) * kSegments * kN + c];
            if (r >= rows) {
                wrong += std::isnan(got) ? 0 : 1;  // past the tiles: never written
                continue;
            }
            const double want = expected(r, c / kN, c % kN);
            nonzero += want != 0.0 ? 1 : 0;
            if (static_cast<double>(got) != want && ++wrong <= 5) {
                ADD_FAILURE() << "row " << r << " column " << c << ": " << got << " want " << want;
            }
        }
    }
    EXPECT_EQ(wrong, 0);
    EXPECT_GT(nonzero, rows * kSegments * kN / 2);  // the check is not vacuous
}

// What the tensor cores' accumulation costs on random FP8 operands (the bound is loose: the
// exact test above is the one that catches misplaced data).
TEST_F(CudaMoeGemmTest, RandomProductsStayCloseToExact) {
    std::normal_distribution<float> nd(0.0f, 100.0f);
    std::uniform_real_distribution<float> ud(0.001f, 0.01f);
    draw([&] { return std::fmax(-448.0f, std::fmin(448.0f, nd(rng))); }, [&] { return ud(rng); });
    const std::vector<float> y = run();
    const int rows = static_cast<int>(kTileExpert.size()) * kMoeTileRows;
    double worst = 0.0, scale = 0.0;
    for (int r = 0; r < rows; ++r) {
        for (int c = 0; c < kSegments * kN; ++c) {
            const double want = expected(r, c / kN, c % kN);
            scale = std::fmax(scale, std::fabs(want));
            worst = std::fmax(
                worst, std::fabs(y[static_cast<std::size_t>(r) * kSegments * kN + c] - want));
        }
    }
    std::printf("random FP8 operands: largest difference %.3e of the largest product %.3e (%.2e)\n",
                worst, scale, worst / scale);
    EXPECT_LE(worst / scale, 1e-2);
}

}  // namespace
}  // namespace dsserve::backend::cuda
