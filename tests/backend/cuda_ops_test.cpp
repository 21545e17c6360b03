// The CUDA backend against the CPU backend, op by op on random inputs, with stated tolerances:
// float32 on both sides, so differences come only from summation order (cuBLAS blocking, tree
// reductions) and from expf/cosf versus libm: relative 1e-5 for element-wise ops, 1e-4 for
// products and attention. Runs only where a CUDA device is visible (ctest label gpu).
#include "backend/cuda/cuda_ops.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "backend/cpu/cpu_ops.h"

namespace dsserve::backend::cuda {
namespace {

using model::Tensor;

class CudaOpsTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (cuda_device_count() == 0) {
            GTEST_SKIP() << "no CUDA device";
        }
        gpu_ = std::make_unique<CudaOps>(0);
    }

    Tensor random(std::int64_t rows, std::int64_t cols, float scale = 1.0f) {
        Tensor t(rows, cols);
        std::normal_distribution<float> nd(0.0f, scale);
        for (float& v : t.data) {
            v = nd(rng_);
        }
        return t;
    }
    Tensor dev(const Tensor& host) {
        Tensor d = host;
        gpu_->to_device(d);
        return d;
    }
    Tensor host(const Tensor& d) { return gpu_->to_host(d); }

    // max |a - b| / max(1, max |b|)
    static float rel_diff(const Tensor& a, const Tensor& b) {
        EXPECT_EQ(a.shape, b.shape);
        float diff = 0.0f, mag = 1.0f;
        for (std::size_t i = 0; i < b.data.size(); ++i) {
            diff = std::max(diff, std::abs(a.data[i] - b.data[i]));
            mag = std::max(mag, std::abs(b.data[i]));
        }
        return diff / mag;
    }

    std::mt19937 rng_{7};
    cpu::CpuOps cpu_{2};
    std::unique_ptr<CudaOps> gpu_;
};

TEST_F(CudaOpsTest, ZerosAndRoundTrip) {
    Tensor z = host(gpu_->zeros(3, 5));
    EXPECT_EQ(z.data, std::vector<float>(15, 0.0f));
    Tensor a = random(7, 9);
    EXPECT_EQ(host(dev(a)).data, a.data);
}

TEST_F(CudaOpsTest, LinearMatchesCpu) {
    for (auto [m, k, n] : {std::tuple{1, 64, 96}, {5, 128, 257}, {33, 7, 12}, {0, 16, 16}}) {
        Tensor x = random(m, k), w = random(n, k), y(m, n);
        cpu_.linear(x, w, y);
        Tensor gy = gpu_->zeros(m, n);
        gpu_->linear(dev(x), dev(w), gy);
        EXPECT_LE(rel_diff(host(gy), y), 1e-5f) << m << " " << k << " " << n;
    }
}

TEST_F(CudaOpsTest, NormsMatchCpu) {
    Tensor x = random(9, 300, 3.0f), g = random(1, 300), b = random(1, 300);
    g.shape = {300};
    b.shape = {300};
    Tensor y(9, 300), z(9, 300);
    cpu_.rms_norm(x, g, 1e-6f, y);
    cpu_.layer_norm(x, g, b, 1e-6f, z);
    Tensor gx = dev(x), gy = gpu_->zeros(9, 300), gz = gpu_->zeros(9, 300);
    gpu_->rms_norm(gx, dev(g), 1e-6f, gy);
    gpu_->layer_norm(gx, dev(g), dev(b), 1e-6f, gz);
    EXPECT_LE(rel_diff(host(gy), y), 1e-5f);
    EXPECT_LE(rel_diff(host(gz), z), 1e-5f);
    // In place, as the model calls it.
    gpu_->rms_norm(gx, dev(g), 1e-6f, gx);
    EXPECT_LE(rel_diff(host(gx), y), 1e-5f);
}

TEST_F(CudaOpsTest, RopeMatchesCpuInBothLayouts) {
    const int heads = 3, stride = 24, offset = 8, rope = 16;
    std::vector<std::int32_t> positions = {0, 5, 1000, 77};
    std::vector<float> inv_freq(rope / 2);
    for (int i = 0; i < rope / 2; ++i) {
        inv_freq[static_cast<std::size_t>(i)] = std::pow(10000.0f, -2.0f * i / rope);
    }
    for (bool interleaved : {true, false}) {
        Tensor x = random(4, heads * stride);
        Tensor gx = dev(x);
        cpu_.rope(x, heads, stride, offset, rope, positions, inv_freq, 1.3f, interleaved);
        gpu_->rope(gx, heads, stride, offset, rope, positions, inv_freq, 1.3f, interleaved);
        EXPECT_LE(rel_diff(host(gx), x), 1e-5f) << interleaved;
    }
}

TEST_F(CudaOpsTest, ElementwiseAndRowOpsMatchCpu) {
    Tensor a = random(6, 50), b = random(6, 50), out(6, 50);
    cpu_.silu_mul(a, b, out);
    Tensor gout = gpu_->zeros(6, 50);
    gpu_->silu_mul(dev(a), dev(b), gout);
    EXPECT_LE(rel_diff(host(gout), out), 1e-5f);

    Tensor ga = dev(a);
    gpu_->add(ga, dev(b));
    gpu_->scale(ga, -0.5f);
    cpu_.add(a, b);
    cpu_.scale(a, -0.5f);
    EXPECT_LE(rel_diff(host(ga), a), 1e-6f);

    Tensor table = random(20, 16), emb(4, 16);
    std::vector<std::int32_t> ids = {3, 19, 0, 3};
    cpu_.embedding(table, ids, emb);
    Tensor gemb = gpu_->zeros(4, 16);
    gpu_->embedding(dev(table), ids, gemb);
    EXPECT_EQ(host(gemb).data, emb.data);

    Tensor dst(6, 30), gdst = gpu_->zeros(6, 30);
    cpu_.copy_cols(b, 10, dst, 5, 20);
    gpu_->copy_cols(dev(b), 10, gdst, 5, 20);
    EXPECT_EQ(host(gdst).data, dst.data);

    std::vector<std::int64_t> rows = {5, 0, 2};
    Tensor picked(3, 50), gpicked = gpu_->zeros(3, 50);
    cpu_.gather_rows(b, rows, picked);
    gpu_->gather_rows(dev(b), rows, gpicked);
    EXPECT_EQ(host(gpicked).data, picked.data);

    std::vector<std::int32_t> slots = {7, 1, 4};
    Tensor cache(9, 50), gcache = gpu_->zeros(9, 50);
    cpu_.scatter_rows(picked, slots, cache);
    gpu_->scatter_rows(dev(picked), slots, gcache);
    EXPECT_EQ(host(gcache).data, cache.data);
}

// Two sequences in one batch with their positions in shuffled cache slots: one decoding a token
// after a long context, one prefilling several tokens.
struct Batch {
    std::vector<std::int32_t> slots_a, slots_b;
    std::vector<model::SequenceSlots> seqs;
    std::int64_t tokens = 0;
};
Batch make_batch(int cached_a, int new_a, int cached_b, int new_b, int num_slots,
                 std::mt19937& rng) {
    Batch b;
    std::vector<std::int32_t> all(static_cast<std::size_t>(num_slots));
    std::iota(all.begin(), all.end(), 0);
    std::shuffle(all.begin(), all.end(), rng);
    b.slots_a.assign(all.begin(), all.begin() + cached_a + new_a);
    b.slots_b.assign(all.begin() + cached_a + new_a,
                     all.begin() + cached_a + new_a + cached_b + new_b);
    b.seqs = {{cached_a, new_a, b.slots_a}, {cached_b, new_b, b.slots_b}};
    b.tokens = new_a + new_b;
    return b;
}

TEST_F(CudaOpsTest, IndexerTopKSelectsTheSamePositions) {
    const int heads = 4, dim = 64, top_k = 16;
    Batch batch = make_batch(200, 1, 10, 30, 300, rng_);
    Tensor q = random(batch.tokens, heads * dim), w = random(batch.tokens, heads),
           index_k = random(300, dim);
    auto want = cpu_.indexer_topk(q, w, batch.seqs, index_k, heads, dim, 0.125f, top_k);
    auto got =
        gpu_->indexer_topk(dev(q), dev(w), batch.seqs, dev(index_k), heads, dim, 0.125f, top_k);
    ASSERT_EQ(got.size(), want.size());
    int differing = 0;
    for (std::size_t r = 0; r < want.size(); ++r) {
        differing += got[r] != want[r];
    }
    // Random scores are far apart compared with float rounding: no near ties to flip.
    EXPECT_EQ(differing, 0);
    EXPECT_EQ(got[0].size(), static_cast<std::size_t>(top_k));
    EXPECT_EQ(got[1].size(), 11u);  // position 10 of the second sequence sees 11 positions
}

TEST_F(CudaOpsTest, MlaAttentionMatchesCpuCausalAndSelected) {
    const int heads = 4, nope = 16, rope = 8, v = 12, lora = 96;
    model::MlaParams p{heads, nope, rope, v, lora, 0.2f};
    Batch batch = make_batch(150, 1, 5, 40, 256, rng_);
    Tensor q = random(batch.tokens, heads * (nope + rope)), latent = random(256, lora),
           krope = random(256, rope), kv_b = random(heads * (nope + v), lora, 0.3f);
    Tensor glatent = dev(latent), gkrope = dev(krope);
    model::LayerCacheView cache{&latent, &krope, nullptr}, gcache{&glatent, &gkrope, nullptr};
    // Causal, then a selected subset per token (every third visible position).
    std::vector<std::vector<std::int32_t>> selected;
    for (const auto& s : batch.seqs) {
        for (int j = 0; j < s.num_new; ++j) {
            selected.emplace_back();
            for (int pos = 0; pos <= s.num_cached + j; pos += 3) {
                selected.back().push_back(pos);
            }
        }
    }
    for (const auto* sel : {&selected, static_cast<decltype(&selected)>(nullptr)}) {
        const std::vector<std::vector<std::int32_t>> none;
        const auto& use = sel ? *sel : none;
        Tensor out(batch.tokens, heads * v), gout = gpu_->zeros(batch.tokens, heads * v);
        cpu_.mla_attention(q, batch.seqs, cache, kv_b, p, use, out);
        gpu_->mla_attention(dev(q), batch.seqs, gcache, dev(kv_b), p, use, gout);
        EXPECT_LE(rel_diff(host(gout), out), 1e-4f) << (sel ? "selected" : "causal");
    }
}

TEST_F(CudaOpsTest, MoeExpertsMatchCpu) {
    const int hidden = 64, inter = 32, num_experts = 6, top_k = 3, tokens = 9;
    std::vector<Tensor> w;
    for (int e = 0; e < num_experts; ++e) {
        w.push_back(random(inter, hidden, 0.2f));
        w.push_back(random(inter, hidden, 0.2f));
        w.push_back(random(hidden, inter, 0.2f));
    }
    std::vector<Tensor> gw;
    for (const auto& t : w) {
        gw.push_back(dev(t));
    }
    std::vector<model::ExpertWeights> experts, gexperts;
    for (int e = 0; e < num_experts; ++e) {
        const auto i = static_cast<std::size_t>(3 * e);
        experts.push_back({&w[i], &w[i + 1], &w[i + 2]});
        gexperts.push_back({&gw[i], &gw[i + 1], &gw[i + 2]});
    }
    model::MoeRouting routing;
    routing.top_k = top_k;
    std::uniform_real_distribution<float> uw(0.1f, 1.0f);
    for (int t = 0; t < tokens; ++t) {
        std::vector<std::int32_t> e(num_experts);
        std::iota(e.begin(), e.end(), 0);
        std::shuffle(e.begin(), e.end(), rng_);  // expert 5 unused by some, order unsorted
        for (int k = 0; k < top_k; ++k) {
            routing.experts.push_back(e[static_cast<std::size_t>(k)]);
            routing.weights.push_back(uw(rng_));
        }
    }
    Tensor x = random(tokens, hidden), out = random(tokens, hidden);
    Tensor gout = dev(out);
    cpu_.moe_experts(x, routing, experts, out);
    gpu_->moe_experts(dev(x), routing, gexperts, gout);
    EXPECT_LE(rel_diff(host(gout), out), 1e-5f);
}

}  // namespace
}  // namespace dsserve::backend::cuda
