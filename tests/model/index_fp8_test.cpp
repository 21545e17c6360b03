// The FP8 indexer's host arithmetic (model/index_fp8.h): the rotation is the normalized
// Sylvester-Hadamard matrix, scales are the smallest fitting power of two, values land on the
// e4m3 grid; and the CPU backend's FP8 indexer scores what the rotated, quantized queries and
// keys give through its float32 path.
#include "model/index_fp8.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "backend/backend.h"
#include "core/dtype.h"
#include "model/kv_cache.h"
#include "model/make_model.h"

namespace dsserve::model {
namespace {

std::vector<float> normal(std::size_t n, std::mt19937& rng, float std = 1.0f) {
    std::normal_distribution<float> nd(0.0f, std);
    std::vector<float> v(n);
    for (float& x : v) {
        x = nd(rng);
    }
    return v;
}

TEST(IndexFp8, RotationIsTheNormalizedHadamardMatrix) {
    std::mt19937 rng(3);
    const int n = 16;
    const std::vector<float> x = normal(n, rng);
    std::vector<float> got = x;
    hadamard_rotate(got);
    for (int i = 0; i < n; ++i) {
        double want = 0.0;
        for (int j = 0; j < n; ++j) {  // H[i][j] = (-1)^popcount(i & j)
            want += (std::popcount(static_cast<unsigned>(i & j)) % 2 != 0 ? -1.0 : 1.0) * x[j];
        }
        EXPECT_NEAR(got[i], want / 4.0, 1e-5) << i;
    }
    // Orthogonal: dot products stay, and rotating twice gives the row back.
    const std::vector<float> a = normal(128, rng), b = normal(128, rng);
    std::vector<float> ra = a, rb = b;
    hadamard_rotate(ra);
    hadamard_rotate(rb);
    EXPECT_NEAR(std::inner_product(ra.begin(), ra.end(), rb.begin(), 0.0),
                std::inner_product(a.begin(), a.end(), b.begin(), 0.0), 1e-4);
    hadamard_rotate(ra);
    for (std::size_t i = 0; i < a.size(); ++i) {
        EXPECT_NEAR(ra[i], a[i], 1e-5) << i;
    }
    EXPECT_FLOAT_EQ(hadamard_norm(64), 0.125f);
}

TEST(IndexFp8, ScalesArePowersOfTwoThatFitTheRow) {
    EXPECT_EQ(e4m3_row_scale(std::vector<float>{448.0f, -3.0f}), 1.0f);
    EXPECT_EQ(e4m3_row_scale(std::vector<float>{-448.5f}), 2.0f);
    EXPECT_EQ(e4m3_row_scale(std::vector<float>{224.0f}), 0.5f);
    EXPECT_EQ(e4m3_row_scale(std::vector<float>{0.7f, 0.1f}),
              1.0f / 512.0f);  // 0.7/448 in (2^-10, 2^-9]
    EXPECT_EQ(e4m3_row_scale(std::vector<float>(8, 0.0f)), std::ldexp(1.0f, -22));  // 1e-4 floor
    EXPECT_TRUE(fp8_index_supported(32) && fp8_index_supported(64) && fp8_index_supported(128));
    EXPECT_FALSE(fp8_index_supported(16) || fp8_index_supported(96) || fp8_index_supported(256));
}

TEST(IndexFp8, QuantizedValuesAreE4m3StepsOfTheScale) {
    std::mt19937 rng(5);
    std::vector<float> row = normal(128, rng, 3.0f);
    const std::vector<float> before = row;
    const float s = quantize_e4m3_row(row);
    EXPECT_EQ(s, e4m3_row_scale(before));
    float amax = 0.0f;
    int moved = 0;
    for (std::size_t i = 0; i < row.size(); ++i) {
        const float code = row[i] / s;
        EXPECT_EQ(fp8_e4m3_to_float(float_to_fp8_e4m3(code)), code) << i;  // on the grid
        // Within half an e4m3 step (3 mantissa bits) of the value, or of the subnormal step.
        EXPECT_LE(std::abs(row[i] - before[i]),
                  std::max(std::abs(before[i]) / 16.0f, s * std::ldexp(1.0f, -10)))
            << i;
        amax = std::max(amax, std::abs(code));
        moved += row[i] != before[i];
    }
    EXPECT_LE(amax, 448.0f);
    EXPECT_GT(amax, 224.0f);  // the smallest scale that fits
    EXPECT_GT(moved, 100);
}

// A bfloat16 cache keeps the indexer's keys in FP8 (where the width allows), a float32 one in
// float32; the CPU's cache write quantizes, and its FP8 indexer chooses what its float32 path
// chooses for queries and keys rotated and quantized beforehand.
TEST(IndexFp8, CpuIndexerScoresTheQuantizedRows) {
    const ModelConfig c = ModelConfig::from_json(preset_config("small", 0));
    EXPECT_EQ(KvCache::index_key_storage(c, Storage::bf16), Storage::fp8_row);
    EXPECT_EQ(KvCache::index_key_storage(c, Storage::f32), Storage::f32);
    auto ops = backend::make_backend({});
    const int heads = 16, dim = 64, slots = 300, top_k = 40;
    std::mt19937 rng(11);
    Tensor keys(slots, dim);
    keys.data = normal(keys.data.size(), rng, 2.0f);
    Tensor g(1, dim), b(1, dim);
    g.data = normal(dim, rng);
    b.data = normal(dim, rng, 0.1f);
    std::vector<std::int32_t> positions(slots), slot_ids(slots);
    std::iota(positions.begin(), positions.end(), 0);
    std::iota(slot_ids.begin(), slot_ids.end(), 0);
    const std::vector<float> inv_freq = {1.0f, 0.3f, 0.1f, 0.01f};
    Tensor fp8 = ops->cache_zeros(slots, dim, Storage::fp8_row);
    Tensor f32 = ops->cache_zeros(slots, dim, Storage::f32);
    for (Tensor* t : {&fp8, &f32}) {
        ops->store_index_key(keys, g, b, 1e-6f, 8, positions, inv_freq, 1.0f, slot_ids, *t);
    }
    // The FP8 table is the float32 one rotated and quantized, row by row.
    for (std::int64_t r = 0; r < slots; ++r) {
        std::vector<float> want(f32.row(r), f32.row(r) + dim);
        hadamard_rotate(want);
        quantize_e4m3_row(want);
        ASSERT_EQ(std::vector<float>(fp8.row(r), fp8.row(r) + dim), want) << r;
    }
    std::vector<float> whole = f32.data;
    rotate_and_quantize_rows(whole, dim);
    EXPECT_EQ(whole, fp8.data);

    Tensor q(3, heads * dim), w(3, heads);
    q.data = normal(q.data.size(), rng);
    w.data = normal(w.data.size(), rng);
    const std::vector<SequenceSlots> seqs = {{slots - 3, 3, slot_ids}};
    Tensor q_quantized = q;
    rotate_and_quantize_rows(q_quantized.data, dim);  // every head's row
    Tensor fp8_as_f32 = fp8;
    fp8_as_f32.storage = Storage::f32;
    const auto got = ops->indexer_topk(q, w, seqs, fp8, heads, dim, 0.125f, top_k).positions;
    const auto want =
        ops->indexer_topk(q_quantized, w, seqs, fp8_as_f32, heads, dim, 0.125f, top_k).positions;
    EXPECT_EQ(got, want);
    EXPECT_EQ(got[0].size(), static_cast<std::size_t>(top_k));
}

}  // namespace
}  // namespace dsserve::model
