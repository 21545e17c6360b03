// The CUDA backend against the CPU backend, op by op on random inputs, with stated tolerances:
// float32 on both sides, so differences come only from summation order (cuBLAS blocking, tree
// reductions) and from expf/cosf versus libm: relative 1e-5 for element-wise ops, 1e-4 for
// products and attention. Runs only where a CUDA device is visible (ctest label gpu).
#include "backend/cuda/cuda_ops.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <tuple>

#include "backend/cpu/cpu_ops.h"
#include "core/dtype.h"
#include "model/loader.h"
#include "model/moe_routing.h"

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

    // The routed experts' sum with block-FP8 experts (w_ref[3e..3e+2]: gate, up, down, already
    // rounded): each expert quantizes its input rows and its activation rows per 128 values.
    Tensor emulated_fp8_experts(const Tensor& x, const model::MoeRouting& routing,
                                const std::vector<Tensor>& w_ref, int num_experts);

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

// The fused residual add + norm (vectorized rows up to 8,192 wide, the plain ops beyond or for
// widths not a multiple of 4) and MLA's fused cache write against the CPU's separate ops.
TEST_F(CudaOpsTest, FusedAddNormAndLatentStoreMatchCpu) {
    for (auto [rows, dim] : {std::pair{3, 7168}, {2, 300}, {1, 9000}, {4, 62}}) {
        Tensor x = random(rows, dim), y = random(rows, dim), g = random(1, dim), h(rows, dim);
        Tensor gx = dev(x), gh = gpu_->zeros(rows, dim);
        cpu_.add_rms_norm(x, y, g, 1e-6f, h);
        gpu_->add_rms_norm(gx, dev(y), dev(g), 1e-6f, gh);
        EXPECT_LE(rel_diff(host(gx), x), 1e-6f) << rows << " x " << dim;
        EXPECT_LE(rel_diff(host(gh), h), 1e-5f) << rows << " x " << dim;
    }
    const int lora = 64, rope_dim = 16, slots_total = 20;
    Tensor kv = random(5, lora + rope_dim), g = random(1, lora);
    Tensor latent = random(slots_total, lora), k_rope = random(slots_total, rope_dim);
    Tensor glatent = dev(latent), gk_rope = dev(k_rope);
    const std::vector<std::int32_t> positions = {0, 7, 8, 300, 4095}, slots = {3, 19, 0, 11, 4};
    std::vector<float> inv_freq(rope_dim / 2);
    for (std::size_t i = 0; i < inv_freq.size(); ++i) {
        inv_freq[i] = std::pow(10000.0f, -2.0f * static_cast<float>(i) / rope_dim);
    }
    cpu_.store_latent(kv, g, 1e-6f, positions, inv_freq, 1.3f, slots,
                      model::LayerCacheView{&latent, &k_rope, nullptr});
    gpu_->store_latent(dev(kv), dev(g), 1e-6f, positions, inv_freq, 1.3f, slots,
                       model::LayerCacheView{&glatent, &gk_rope, nullptr});
    EXPECT_LE(rel_diff(host(glatent), latent), 1e-5f);
    EXPECT_LE(rel_diff(host(gk_rope), k_rope), 1e-5f);

    // The indexer's cache write in one kernel against the CPU's LayerNorm, RoPE and scatter; the
    // other slots keep their rows. Widths: DeepSeek-V3.2's 128 with rope 64, an odd one, and one
    // past the kernel's limit (the separate ops).
    for (auto [dim, rd] : {std::pair{128, 64}, {50, 8}, {1100, 16}}) {
        Tensor k = random(5, dim, 3.0f), kg = random(1, dim), kb = random(1, dim);
        Tensor index_k = random(slots_total, dim), gindex_k = dev(index_k);
        std::vector<float> freq(static_cast<std::size_t>(rd / 2));
        for (std::size_t i = 0; i < freq.size(); ++i) {
            freq[i] = std::pow(10000.0f, -2.0f * static_cast<float>(i) / static_cast<float>(rd));
        }
        cpu_.store_index_key(k, kg, kb, 1e-6f, rd, positions, freq, 1.3f, slots, index_k);
        gpu_->store_index_key(dev(k), dev(kg), dev(kb), 1e-6f, rd, positions, freq, 1.3f, slots,
                              gindex_k);
        EXPECT_LE(rel_diff(host(gindex_k), index_k), 1e-5f) << dim << " rope " << rd;
    }
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

    // Row copies take 16-byte accesses where the width allows: both paths.
    for (int cols : {50, 64}) {
        const Tensor src = random(6, cols);
        std::vector<std::int64_t> rows = {5, 0, 2};
        Tensor picked(3, cols), gpicked = gpu_->zeros(3, cols);
        cpu_.gather_rows(src, rows, picked);
        gpu_->gather_rows(dev(src), rows, gpicked);
        EXPECT_EQ(host(gpicked).data, picked.data) << cols;

        std::vector<std::int32_t> slots = {7, 1, 4};
        Tensor cache(9, cols), gcache = gpu_->zeros(9, cols);
        cpu_.scatter_rows(picked, slots, cache);
        gpu_->scatter_rows(dev(picked), slots, gcache);
        EXPECT_EQ(host(gcache).data, cache.data) << cols;
    }
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

// 4 heads take the warp-per-key scores kernel; 16 and 64 (the presets', DeepSeek-V3.2's) the
// thread-per-key one.
TEST_F(CudaOpsTest, IndexerTopKSelectsTheSamePositions) {
    const int top_k = 16;
    for (const auto& [heads, dim] : {std::pair{4, 64}, std::pair{16, 32}, std::pair{64, 128}}) {
        Batch batch = make_batch(200, 1, 10, 30, 300, rng_);
        Tensor q = random(batch.tokens, heads * dim), w = random(batch.tokens, heads),
               index_k = random(300, dim);
        auto want =
            cpu_.indexer_topk(q, w, batch.seqs, index_k, heads, dim, 0.125f, top_k).positions;
        const model::IndexSelection on_device =
            gpu_->indexer_topk(dev(q), dev(w), batch.seqs, dev(index_k), heads, dim, 0.125f, top_k);
        EXPECT_TRUE(on_device.positions.empty());  // the choice stays on the device
        auto got = gpu_->selection_positions(on_device);
        ASSERT_EQ(got.size(), want.size());
        int differing = 0;
        for (std::size_t r = 0; r < want.size(); ++r) {
            differing += got[r] != want[r];
        }
        // Random scores are far apart compared with float rounding: no near ties to flip.
        EXPECT_EQ(differing, 0) << heads << " heads";
        EXPECT_EQ(got[0].size(), static_cast<std::size_t>(top_k));
        EXPECT_EQ(got[1].size(), 11u);  // position 10 of the second sequence sees 11 positions
    }
}

// The FP8 indexer (model/index_fp8.h). The cache write: the device's bytes and scales are the
// CPU's except where the two LayerNorms' rounding puts a value on the other side of an e4m3
// rounding boundary (measured: all equal, or a handful in thousands; bound 1%). The choice: the
// device against the CPU's FP8 indexer reading the device's own key table, so that what differs is
// only the summation order of the scores. Shapes: DeepSeek-V3.2's (64 heads of 128), the presets'
// (16 of 32 and 64), and 20 heads (padded to 32 in the kernel); one batch of two short
// sequences, one with rows past a key tile (128) and groups past 16 rows.
TEST_F(CudaOpsTest, IndexerFp8MatchesCpu) {
    for (const auto& [heads, dim, rd] :
         {std::tuple{64, 128, 64}, {16, 32, 16}, {16, 64, 32}, {20, 64, 16}}) {
        for (const auto& [cached_a, new_a, cached_b, new_b, top_k] :
             {std::tuple{200, 1, 10, 30, 16}, {300, 40, 5, 200, 64}}) {
            const int slots = cached_a + new_a + cached_b + new_b + 7;
            Batch batch = make_batch(cached_a, new_a, cached_b, new_b, slots, rng_);
            Tensor k = random(slots, dim, 3.0f), kg = random(1, dim), kb = random(1, dim);
            std::vector<float> freq(static_cast<std::size_t>(rd / 2));
            for (std::size_t i = 0; i < freq.size(); ++i) {
                freq[i] =
                    std::pow(10000.0f, -2.0f * static_cast<float>(i) / static_cast<float>(rd));
            }
            std::vector<std::int32_t> positions(static_cast<std::size_t>(slots)), slot_ids;
            std::iota(positions.begin(), positions.end(), 0);
            slot_ids = positions;
            std::shuffle(slot_ids.begin(), slot_ids.end(), rng_);
            Tensor table = cpu_.cache_zeros(slots, dim, model::Storage::fp8_row);
            Tensor gtable = gpu_->cache_zeros(slots, dim, model::Storage::fp8_row);
            cpu_.store_index_key(k, kg, kb, 1e-6f, rd, positions, freq, 1.3f, slot_ids, table);
            gpu_->store_index_key(dev(k), dev(kg), dev(kb), 1e-6f, rd, positions, freq, 1.3f,
                                  slot_ids, gtable);
            const Tensor got_table = host(gtable);
            ASSERT_EQ(got_table.storage, model::Storage::fp8_row);
            int moved = 0;
            for (std::size_t i = 0; i < table.data.size(); ++i) {
                moved += got_table.data[i] != table.data[i];
            }
            EXPECT_LE(moved, static_cast<int>(table.data.size() / 100)) << heads << " x " << dim;

            Tensor q = random(batch.tokens, heads * dim), w = random(batch.tokens, heads);
            const auto want =
                cpu_.indexer_topk(q, w, batch.seqs, got_table, heads, dim, 0.125f, top_k).positions;
            const auto got = gpu_->selection_positions(
                gpu_->indexer_topk(dev(q), dev(w), batch.seqs, gtable, heads, dim, 0.125f, top_k));
            ASSERT_EQ(got.size(), want.size());
            int differing = 0;
            for (std::size_t r = 0; r < want.size(); ++r) {
                differing += got[r] != want[r];
            }
            EXPECT_EQ(differing, 0)
                << heads << " heads of " << dim << ", " << new_a + new_b << " rows, top " << top_k;
        }
    }
}

// MLA reading the indexer's device-side selection equals MLA over the same positions given from
// the host (the same key lists, so the same result bit for bit), and the CPU over its own choice.
TEST_F(CudaOpsTest, MlaAttentionReadsTheIndexersDeviceSelection) {
    const int heads = 4, nope = 16, rope = 8, v = 12, lora = 96, ih = 4, id = 64, top_k = 16;
    model::MlaParams p{heads, nope, rope, v, lora, 0.2f};
    Batch batch = make_batch(150, 1, 10, 30, 256, rng_);
    Tensor q = random(batch.tokens, heads * (nope + rope)), latent = random(256, lora),
           krope = random(256, rope), kv_b = random(heads * (nope + v), lora, 0.3f);
    Tensor iq = random(batch.tokens, ih * id), iw = random(batch.tokens, ih),
           index_k = random(256, id);
    Tensor glatent = dev(latent), gkrope = dev(krope);
    model::LayerCacheView cache{&latent, &krope, nullptr}, gcache{&glatent, &gkrope, nullptr};
    const model::IndexSelection on_device =
        gpu_->indexer_topk(dev(iq), dev(iw), batch.seqs, dev(index_k), ih, id, 0.125f, top_k);
    ASSERT_NE(on_device.device, nullptr);
    const model::IndexSelection from_host{gpu_->selection_positions(on_device), nullptr};
    const model::IndexSelection cpu_choice =
        cpu_.indexer_topk(iq, iw, batch.seqs, index_k, ih, id, 0.125f, top_k);
    ASSERT_EQ(from_host.positions, cpu_choice.positions);
    Tensor a = gpu_->zeros(batch.tokens, heads * v), b = gpu_->zeros(batch.tokens, heads * v);
    gpu_->mla_attention(dev(q), batch.seqs, gcache, dev(kv_b), p, on_device, a);
    gpu_->mla_attention(dev(q), batch.seqs, gcache, dev(kv_b), p, from_host, b);
    EXPECT_EQ(host(a).data, host(b).data);
    Tensor out(batch.tokens, heads * v);
    cpu_.mla_attention(q, batch.seqs, cache, kv_b, p, cpu_choice, out);
    EXPECT_LE(rel_diff(host(a), out), 1e-4f);
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
        cpu_.mla_attention(q, batch.seqs, cache, kv_b, p, {use, nullptr}, out);
        gpu_->mla_attention(dev(q), batch.seqs, gcache, dev(kv_b), p, {use, nullptr}, gout);
        EXPECT_LE(rel_diff(host(gout), out), 1e-4f) << (sel ? "selected" : "causal");
    }
}

// Causal prefill steps over a BF16 cache take plain multi-head attention (keys and values
// expanded by kv_b, mha_prefill.h) from 128 new tokens that are at least half of what they see:
// DeepSeek's head shape, kv_b in BF16 and in block FP8, fresh prompts and one continuing a cached
// prefix, against the CPU's absorbed form over the same cache values and weights. Queries,
// expanded keys, values and probabilities are rounded to bfloat16 (measured on an H200: 2.5e-3 to
// 3.2e-3 of the largest output; bound 1e-2). The same step with the positions given from the host
// takes the absorbed kernels, whose rounding differs: the results are close but not equal.
TEST_F(CudaOpsTest, MlaPrefillWithoutAbsorptionMatchesCpu) {
    const int heads = 8, nope = 128, rope = 64, v = 128, lora = 512, slots = 700;
    model::MlaParams p{heads, nope, rope, v, lora, 0.07f};
    auto rounded = [](Tensor t) {
        for (float& x : t.data) {
            x = bf16_to_float(float_to_bf16(x));
        }
        return t;
    };
    const Tensor latent = rounded(random(slots, lora)), krope = rounded(random(slots, rope));
    Tensor glatent = latent, gkrope = krope;
    gpu_->to_device(glatent, model::Storage::bf16);
    gpu_->to_device(gkrope, model::Storage::bf16);
    const model::LayerCacheView cache{const_cast<Tensor*>(&latent), const_cast<Tensor*>(&krope),
                                      nullptr};
    const model::LayerCacheView gcache{&glatent, &gkrope, nullptr};
    for (model::Storage weights : {model::Storage::bf16, model::Storage::fp8_block}) {
        Tensor gkv_b = random(heads * (nope + v), lora, 0.05f);
        gpu_->to_device(gkv_b, weights);
        const Tensor kv_b = host(gkv_b);  // the values the device holds
        for (const auto& [cached_a, new_a, cached_b, new_b] :
             {std::tuple{0, 300, 0, 70}, {50, 200, 0, 130}}) {
            Batch batch = make_batch(cached_a, new_a, cached_b, new_b, slots, rng_);
            Tensor q = random(batch.tokens, heads * (nope + rope));
            Tensor want(batch.tokens, heads * v), got = gpu_->zeros(batch.tokens, heads * v),
                                                  absorbed = gpu_->zeros(batch.tokens, heads * v);
            cpu_.mla_attention(q, batch.seqs, cache, kv_b, p, {}, want);
            gpu_->mla_attention(dev(q), batch.seqs, gcache, gkv_b, p, {}, got);
            std::vector<std::vector<std::int32_t>> all;
            for (const auto& sq : batch.seqs) {
                for (int j = 0; j < sq.num_new; ++j) {
                    all.emplace_back(static_cast<std::size_t>(sq.num_cached + j + 1));
                    std::iota(all.back().begin(), all.back().end(), 0);
                }
            }
            gpu_->mla_attention(dev(q), batch.seqs, gcache, gkv_b, p, {all, nullptr}, absorbed);
            const Tensor h = host(got), ha = host(absorbed);
            const float diff = rel_diff(h, want);
            std::printf("mha prefill, %s kv_b, %d + %d, %d + %d: %.2e of the largest output\n",
                        weights == model::Storage::bf16 ? "bf16" : "fp8", cached_a, new_a, cached_b,
                        new_b, static_cast<double>(diff));
            EXPECT_LE(diff, 1e-2f);
            EXPECT_LE(rel_diff(ha, want), 3e-2f);  // the absorbed kernels' own rounding
            EXPECT_NE(h.data, ha.data);            // two paths
        }
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

// Block FP8 emulated on the host: values rounded to e4m3 (nearest even, saturating) against a
// float32 scale of amax / 448 per block, then back to float.
Tensor fp8_round_trip(const Tensor& t, std::int64_t block_rows, std::int64_t block_cols) {
    Tensor out = t;
    for (std::int64_t r0 = 0; r0 < t.rows(); r0 += block_rows) {
        for (std::int64_t c0 = 0; c0 < t.cols(); c0 += block_cols) {
            const std::int64_t r1 = std::min(t.rows(), r0 + block_rows);
            const std::int64_t c1 = std::min(t.cols(), c0 + block_cols);
            float amax = 0.0f;
            for (std::int64_t r = r0; r < r1; ++r) {
                for (std::int64_t c = c0; c < c1; ++c) {
                    amax = std::max(amax, std::abs(t.row(r)[c]));
                }
            }
            const float s = amax > 0.0f ? amax / 448.0f : 1.0f;
            for (std::int64_t r = r0; r < r1; ++r) {
                for (std::int64_t c = c0; c < c1; ++c) {
                    out.row(r)[c] = fp8_e4m3_to_float(float_to_fp8_e4m3(t.row(r)[c] / s)) * s;
                }
            }
        }
    }
    return out;
}

// Rows whose 128-blocks differ in magnitude by orders, so that a scale applied to the wrong
// block shows.
Tensor uneven(std::int64_t rows, std::int64_t cols, std::mt19937& rng) {
    Tensor t(rows, cols);
    std::normal_distribution<float> nd;
    for (std::int64_t r = 0; r < rows; ++r) {
        for (std::int64_t c = 0; c < cols; ++c) {
            const auto level = static_cast<float>((r / 128 + 3 * (c / 128) + r % 3) % 5);
            t.row(r)[c] = nd(rng) * std::pow(4.0f, level - 2.0f);
        }
    }
    return t;
}

Tensor CudaOpsTest::emulated_fp8_experts(const Tensor& x, const model::MoeRouting& routing,
                                         const std::vector<Tensor>& w_ref, int num_experts) {
    const std::int64_t tokens = x.rows(), hidden = x.cols();
    Tensor out(tokens, hidden);
    for (std::int64_t t = 0; t < tokens; ++t) {
        for (int k = 0; k < routing.top_k; ++k) {
            const auto i = static_cast<std::size_t>(t * routing.top_k + k);
            const auto e = static_cast<std::size_t>(routing.experts[i]);
            EXPECT_LT(e, static_cast<std::size_t>(num_experts));
            const std::int64_t inter = w_ref[3 * e].rows();
            Tensor xr(1, hidden), g(1, inter), u(1, inter), act(1, inter), y(1, hidden);
            std::copy_n(x.row(t), hidden, xr.row(0));
            xr = fp8_round_trip(xr, 1, 128);
            cpu_.linear(xr, w_ref[3 * e], g);
            cpu_.linear(xr, w_ref[3 * e + 1], u);
            cpu_.silu_mul(g, u, act);
            cpu_.linear(fp8_round_trip(act, 1, 128), w_ref[3 * e + 2], y);
            for (std::int64_t d = 0; d < hidden; ++d) {
                out.row(t)[d] += routing.weights[i] * y.row(0)[d];
            }
        }
    }
    return out;
}

// Up to 2 rows a block-FP8 product runs in the GEMV kernel, which widens the FP8 weight and keeps
// the activations in float32: the float product with the dequantized weight, to summation order
// (1e-5). From 3 rows on it goes through cuBLASLt's block-scaled FP8 matmul, which equals the
// float product of the host-emulated FP8 operands (weights per 128x128 block, activations per
// row and 128 columns) up to the accumulation: Hopper's FP8 tensor cores accumulate with fewer
// mantissa bits than float32 (measured relative difference 1.3e-4 to 2.2e-4), hence 1e-3.
// Weights whose rows are not a multiple of 128 (kv_a's 576) are padded on the device.
// Block-FP8 products quantize the activations to e4m3 per 128 values, at every size: up to 16
// rows on the tensor-core GEMV (split over many warps for the wide reductions: the o_proj shape;
// the last case runs unsplit in more than one wave of an H200),
// beyond on cuBLASLt. Both give the float32 product of the two rounded operands: the GEMV to 1e-5
// (measured on the H200: at most 4.5e-7), cuBLASLt to 1e-3 (measured: 3.4e-4).
TEST_F(CudaOpsTest, Fp8LinearMatchesEmulatedBlockFp8) {
    for (auto [m, k, n] : {std::tuple{1, 256, 384},
                           {2, 128, 200},
                           {7, 384, 256},
                           {8, 256, 576},
                           {9, 256, 576},
                           {16, 512, 37},
                           {17, 256, 128},
                           {130, 512, 128},
                           {3, 128, 64},
                           {1, 7168, 2240},
                           {1, 16384, 7168},
                           {16, 2048, 28672}}) {
        Tensor x = uneven(m, k, rng_), w = uneven(n, k, rng_);
        Tensor w8 = w;
        gpu_->to_device(w8, model::Storage::fp8_block);
        ASSERT_EQ(w8.storage, model::Storage::fp8_block);
        const Tensor w_ref = fp8_round_trip(w, 128, 128);
        if (k <= 512) {
            EXPECT_EQ(host(w8).data, w_ref.data) << "weight quantization";
        }
        Tensor want(m, n);
        cpu_.linear(fp8_round_trip(x, 1, 128), w_ref, want);
        Tensor got = gpu_->zeros(m, n);
        gpu_->linear(dev(x), w8, got);
        const float diff = rel_diff(host(got), want);
        EXPECT_LE(diff, m <= 16 ? 1e-5f : 1e-3f) << m << " " << k << " " << n;
        std::printf("fp8 linear [%d, %d] x [%d, %d]: relative difference %.2e\n", m, k, n, k, diff);
    }
}

Tensor bf16_round_trip(const Tensor& t) {
    Tensor out = t;
    for (float& v : out.data) {
        v = bf16_to_float(float_to_bf16(v));
    }
    return out;
}

// BF16 weights (the head, the embedding): the GEMV reads them as stored; larger products round
// the activations to BF16 for cuBLAS, whose BF16 x BF16 products are exact in float32.
TEST_F(CudaOpsTest, Bf16LinearAndEmbeddingMatchCpu) {
    for (auto [m, k, n] : {std::tuple{1, 256, 1000}, {5, 64, 33}, {20, 128, 300}}) {
        Tensor x = random(m, k), w = random(n, k);
        Tensor wb = w;
        gpu_->to_device(wb, model::Storage::bf16);
        ASSERT_EQ(wb.storage, model::Storage::bf16);
        const Tensor w_ref = bf16_round_trip(w);
        EXPECT_EQ(host(wb).data, w_ref.data);
        Tensor want(m, n);
        cpu_.linear(m <= 2 ? x : bf16_round_trip(x), w_ref, want);
        Tensor got = gpu_->zeros(m, n);
        gpu_->linear(dev(x), wb, got);
        EXPECT_LE(rel_diff(host(got), want), 1e-5f) << m << " " << k << " " << n;
        const std::vector<std::int32_t> ids = {3, 0, n - 1, 3};
        Tensor rows(4, k), grows = gpu_->zeros(4, k);
        cpu_.embedding(w_ref, ids, rows);
        gpu_->embedding(wb, ids, grows);
        EXPECT_EQ(host(grows).data, rows.data);
    }
    // A width the embedding cannot read 16 bytes at a time.
    Tensor table = random(7, 20);
    Tensor tb = table;
    gpu_->to_device(tb, model::Storage::bf16);
    const std::vector<std::int32_t> ids = {6, 2};
    Tensor rows(2, 20), grows = gpu_->zeros(2, 20);
    cpu_.embedding(bf16_round_trip(table), ids, rows);
    gpu_->embedding(tb, ids, grows);
    EXPECT_EQ(host(grows).data, rows.data);
}

// The overlap schedule's token slots: picks left on the device feed the next embedding, whose
// ids name the slots, and come back to the host when collected. Greedy rows over a vocabulary
// that the argmax splits across blocks (with ties between blocks' shares, won by the lower id),
// drawn rows at temperature 0 (their best), and embedding rows wider than one block's share, in
// float32 and BF16: all as the CPU backend does them.
TEST_F(CudaOpsTest, PickedTokensFeedTheEmbeddingThroughTheirSlots) {
    constexpr int kVocab = 20000;
    Tensor logits = random(4, kVocab);
    logits.row(0)[17000] = 40.0f;
    logits.row(0)[3] = 40.0f;  // the tie: id 3, in the first block's share
    logits.row(1)[12345] = 30.0f;
    logits.row(2)[19999] = 50.0f;
    logits.row(3)[8] = 60.0f;
    const std::vector<std::int64_t> greedy = {2, 0, 1};
    const std::vector<model::RowSampling> draws = {{3, 0.0f, -1, 1.0f, 0.0f, 0.5}};
    ASSERT_TRUE(gpu_->pick_tokens_async(dev(logits), greedy, draws, 100));
    ASSERT_TRUE(cpu_.pick_tokens_async(logits, greedy, {}, 100));
    EXPECT_FALSE(cpu_.pick_tokens_async(logits, greedy, draws, 200));  // it has no draw
    for (int width : {2500, 16}) {
        for (model::Storage storage : {model::Storage::f32, model::Storage::bf16}) {
            const Tensor table = random(kVocab, width);
            Tensor dtable = table;
            gpu_->to_device(dtable, storage);
            const Tensor ref = storage == model::Storage::bf16 ? bf16_round_trip(table) : table;
            const std::vector<std::int32_t> ids = {-101, 7, -102, -103, -104};
            const std::vector<std::int32_t> cpu_ids = {-101, 7, -102, -103, 8};
            Tensor want(5, width), got = gpu_->zeros(5, width);
            cpu_.embedding(ref, cpu_ids, want);
            gpu_->embedding(dtable, ids, got);
            EXPECT_EQ(host(got).data, want.data) << width;
        }
    }
    EXPECT_EQ(gpu_->collect_tokens(100, 4), (std::vector<std::int32_t>{19999, 3, 12345, 8}));
    EXPECT_EQ(cpu_.collect_tokens(100, 3), (std::vector<std::int32_t>{19999, 3, 12345}));
}

// Weights that share their input run in one GEMV launch, each into its own output.
TEST_F(CudaOpsTest, LinearsShareTheirInput) {
    for (int m : {1, 4, 12}) {
        Tensor x = uneven(m, 256, rng_);
        std::vector<Tensor> ws = {uneven(576, 256, rng_), uneven(384, 256, rng_),
                                  uneven(128, 256, rng_)};
        std::vector<Tensor> gws = ws, want, got;
        std::vector<const Tensor*> wp;
        std::vector<Tensor*> yp;
        for (std::size_t i = 0; i < ws.size(); ++i) {
            gpu_->to_device(gws[i], model::Storage::fp8_block);
            want.push_back(gpu_->zeros(m, ws[i].rows()));
            got.push_back(gpu_->zeros(m, ws[i].rows()));
        }
        const Tensor gx = dev(x);
        for (std::size_t i = 0; i < ws.size(); ++i) {
            gpu_->linear(gx, gws[i], want[i]);
            wp.push_back(&gws[i]);
            yp.push_back(&got[i]);
        }
        gpu_->linears(gx, wp, yp);
        for (std::size_t i = 0; i < ws.size(); ++i) {
            EXPECT_LE(rel_diff(host(got[i]), host(want[i])), 1e-6f) << m << " weight " << i;
        }
    }
}

// A norm whose output feeds a block-FP8 product writes that output in FP8 too, and the product
// then launches no quantizer. The bytes are the quantizer's (one rounding rule, fp8_quant.cuh),
// so the product equals, bit for bit, the one over a fresh copy of the normed rows; and the FP8
// rows must not outlive a write to the rows they stand for: an add in place, a product writing
// into them, the next norm. A product writing elsewhere (the MoE router between the norm and
// the experts) keeps them.
// The queries' product with its rotation: in block FP8 at decode sizes the GEMV rotates its
// results as they leave it, which must equal the product followed by the rope kernel bit for
// bit (split tiles and unsplit ones, heads that straddle tiles); past the GEMV's rows, and for
// float weights, it is the two ops in turn. And against the CPU's product and rotation.
TEST_F(CudaOpsTest, LinearRopeEqualsTheProductThenTheRotation) {
    const int k = 256;
    for (const auto& [heads, stride, offset, rope] :
         {std::tuple{3, 192, 128, 64}, std::tuple{5, 24, 16, 8}, std::tuple{2, 40, 0, 40}}) {
        const int n = heads * stride;
        std::vector<float> inv_freq(static_cast<std::size_t>(rope / 2));
        for (int i = 0; i < rope / 2; ++i) {
            inv_freq[static_cast<std::size_t>(i)] = std::pow(10000.0f, -2.0f * i / rope);
        }
        Tensor w = uneven(n, k, rng_), w8 = w, wf = dev(w);
        gpu_->to_device(w8, model::Storage::fp8_block);
        ASSERT_EQ(w8.storage, model::Storage::fp8_block);
        for (int m : {1, 5, 16, 17}) {
            std::vector<std::int32_t> positions;
            for (int r = 0; r < m; ++r) {
                positions.push_back(r * 7919 % 163840);
            }
            const Tensor x = dev(uneven(m, k, rng_));
            for (const Tensor* weight : {&w8, &wf}) {
                const std::string what = std::to_string(heads) + " heads of " +
                                         std::to_string(stride) + ", " + std::to_string(m) +
                                         (weight == &w8 ? " rows, fp8" : " rows, f32");
                Tensor want = gpu_->zeros(m, n), got = gpu_->zeros(m, n);
                gpu_->linear(x, *weight, want);
                gpu_->rope(want, heads, stride, offset, rope, positions, inv_freq, 1.3f, true);
                gpu_->linear_rope(x, *weight, got, heads, stride, offset, rope, positions, inv_freq,
                                  1.3f, true);
                EXPECT_EQ(host(got).data, host(want).data) << what;
                if (weight == &wf) {
                    Tensor cpu(m, n);
                    cpu_.linear_rope(host(x), w, cpu, heads, stride, offset, rope, positions,
                                     inv_freq, 1.3f, true);
                    EXPECT_LE(rel_diff(host(got), cpu), 1e-4f) << what;
                }
            }
        }
    }
}

TEST_F(CudaOpsTest, NormsLeaveFp8RowsForTheNextProduct) {
    const int k = 256, n = 384;
    Tensor w8 = uneven(n, k, rng_), wf = dev(uneven(k, k, rng_)), g = random(1, k);
    g.shape = {k};
    const Tensor gg = dev(g);
    gpu_->to_device(w8, model::Storage::fp8_block);
    for (int m : {1, 5, 16, 17}) {
        const Tensor x = uneven(m, k, rng_), r = uneven(m, k, rng_);
        // The product over a fresh tensor holding the same values: quantized by the GEMV's own
        // quantizer launch.
        auto fresh = [&](const Tensor& h) {
            Tensor y = gpu_->zeros(m, n);
            gpu_->linear(dev(host(h)), w8, y);
            return host(y).data;
        };
        auto product = [&](const Tensor& h) {
            Tensor y = gpu_->zeros(m, n);
            gpu_->linear(h, w8, y);
            return host(y).data;
        };
        Tensor h = gpu_->zeros(m, k), other = gpu_->zeros(m, k);
        gpu_->rms_norm(dev(x), gg, 1e-6f, h);
        const auto want = fresh(h);
        gpu_->rms_norm(dev(x), gg, 1e-6f, h);
        EXPECT_EQ(product(h), want) << "right after the norm, m " << m;
        gpu_->rms_norm(dev(x), gg, 1e-6f, h);
        gpu_->linear(h, wf, other);  // writes elsewhere
        EXPECT_EQ(product(h), want) << "after a product into other rows, m " << m;

        gpu_->rms_norm(dev(x), gg, 1e-6f, h);
        gpu_->add(h, dev(r));
        EXPECT_EQ(product(h), fresh(h)) << "after an add into the rows, m " << m;
        EXPECT_NE(fresh(h), want);
        gpu_->rms_norm(dev(x), gg, 1e-6f, h);
        gpu_->linear(dev(r), wf, h);  // overwrites them
        EXPECT_EQ(product(h), fresh(h)) << "after a product into the rows, m " << m;
        gpu_->rms_norm(dev(x), gg, 1e-6f, h);
        gpu_->rms_norm(dev(r), gg, 1e-6f, other);
        EXPECT_EQ(product(h), want) << "the next norm's rows are other rows, m " << m;

        // The residual form: x += r, h = RMSNorm(x), as the decoder layer calls it.
        Tensor res = dev(x);
        gpu_->add_rms_norm(res, dev(r), gg, 1e-6f, h);
        const auto want_add = fresh(h);
        Tensor res2 = dev(x);
        gpu_->add_rms_norm(res2, dev(r), gg, 1e-6f, h);
        EXPECT_EQ(product(h), want_add) << "after add_rms_norm, m " << m;
    }
}

// The dense SwiGLU MLP in block FP8 at decode sizes: gate and up in one launch, SiLU(gate) * up
// applied by the down projection's quantizer. Against the host emulation of the FP8 MLP (input
// and activation rounded per 128 values); the activation is computed with __expf on the device
// and expf on the host, which can move an e4m3 rounding by one step: 1e-3.
TEST_F(CudaOpsTest, Fp8SwigluMlpMatchesEmulatedBlockFp8) {
    const int hidden = 256, inter = 384;
    Tensor gate = uneven(inter, hidden, rng_), up = uneven(inter, hidden, rng_),
           down = uneven(hidden, inter, rng_);
    const Tensor gate_ref = fp8_round_trip(gate, 128, 128), up_ref = fp8_round_trip(up, 128, 128),
                 down_ref = fp8_round_trip(down, 128, 128);
    for (Tensor* w : {&gate, &up, &down}) {
        gpu_->to_device(*w, model::Storage::fp8_block);
    }
    const model::ExpertWeights mlp{&gate, &up, &down};
    for (int m : {1, 3, 16}) {
        const Tensor x = uneven(m, hidden, rng_);
        const Tensor xq = fp8_round_trip(x, 1, 128);
        Tensor g(m, inter), u(m, inter), act(m, inter), want(m, hidden);
        cpu_.linear(xq, gate_ref, g);
        cpu_.linear(xq, up_ref, u);
        cpu_.silu_mul(g, u, act);
        cpu_.linear(fp8_round_trip(act, 1, 128), down_ref, want);
        Tensor got = gpu_->zeros(m, hidden);
        gpu_->swiglu_mlp(dev(x), mlp, got);
        EXPECT_LE(rel_diff(host(got), want), 1e-3f) << m;
    }
}

// Routing on the device picks the experts and weights model::route_tokens picks, and the grouped
// GEMV gives the host path's result, for float32 and block-FP8 experts, up to the size where the
// backend hands the step to the host path.
TEST_F(CudaOpsTest, MoeRoutedOnTheDeviceMatchesHostRouting) {
    model::ModelConfig c;
    c.n_routed_experts = 16;
    c.n_group = 4;
    c.topk_group = 2;
    c.num_experts_per_tok = 4;
    c.norm_topk_prob = true;
    c.routed_scaling_factor = 2.5;
    // One bias for all: the backend keeps a router bias by its host address, which a bias made
    // per pass of the loop below could reuse with other values.
    std::vector<float> bias(static_cast<std::size_t>(c.n_routed_experts));
    std::normal_distribution<float> nd(0.0f, 0.1f);
    for (float& b : bias) {
        b = nd(rng_);
    }
    // FP8 also at widths of several scale blocks more than the tiled GEMM's pipeline holds.
    for (const auto& [fp8, hidden, inter] :
         {std::tuple{false, 256, 128}, std::tuple{true, 256, 128}, std::tuple{true, 768, 640}}) {
        std::vector<Tensor> w_ref, gw;
        // The routed experts, then one more as the shared expert.
        for (int e = 0; e < 3 * (c.n_routed_experts + 1); ++e) {
            Tensor w = e % 3 == 2 ? random(hidden, inter, 0.1f) : random(inter, hidden, 0.1f);
            gw.push_back(w);
            gpu_->to_device(gw.back(), fp8 ? model::Storage::fp8_block : model::Storage::f32);
            w_ref.push_back(fp8 ? fp8_round_trip(w, 128, 128) : w);
        }
        std::vector<model::ExpertWeights> experts, gexperts;
        for (int e = 0; e < c.n_routed_experts; ++e) {
            const auto i = static_cast<std::size_t>(3 * e);
            experts.push_back({&w_ref[i], &w_ref[i + 1], &w_ref[i + 2]});
            gexperts.push_back({&gw[i], &gw[i + 1], &gw[i + 2]});
        }
        const auto s = static_cast<std::size_t>(3 * c.n_routed_experts);
        const model::ExpertWeights shared{&w_ref[s], &w_ref[s + 1], &w_ref[s + 2]};
        const model::ExpertWeights gshared{&gw[s], &gw[s + 1], &gw[s + 2]};
        // 600 tokens (2,400 or 3,000 rows) still take the grouped GEMV; 1,500 (6,000 rows) the
        // host path, or in FP8 the tiled GEMM, which also runs every FP8 size below. The shared
        // expert joins the routed experts' launches on the device paths (and is added after
        // them on the host path).
        const std::vector<int> sizes = !fp8            ? std::vector<int>{1, 3, 40, 600, 1500}
                                       : hidden == 256 ? std::vector<int>{1, 3, 40, 300, 600, 1500}
                                                       : std::vector<int>{40, 700};
        for (int tokens : sizes) {
            for (bool with_shared : {false, true}) {
                Tensor x = random(tokens, hidden), logits = random(tokens, c.n_routed_experts);
                const Tensor start = random(tokens, hidden);
                Tensor want = start;
                if (fp8) {
                    // FP8 experts quantize their input rows: the emulation of fp8_experts(), with
                    // the shared expert as one more assignment of every token, at weight 1.
                    model::MoeRouting routing = model::route_tokens(logits, bias, c);
                    if (with_shared) {
                        model::MoeRouting all;
                        all.top_k = routing.top_k + 1;
                        for (int t = 0; t < tokens; ++t) {
                            for (int k = 0; k < routing.top_k; ++k) {
                                const auto i = static_cast<std::size_t>(t * routing.top_k + k);
                                all.experts.push_back(routing.experts[i]);
                                all.weights.push_back(routing.weights[i]);
                            }
                            all.experts.push_back(c.n_routed_experts);
                            all.weights.push_back(1.0f);
                        }
                        routing = std::move(all);
                    }
                    const Tensor routed =
                        emulated_fp8_experts(x, routing, w_ref, c.n_routed_experts + 1);
                    for (std::size_t i = 0; i < want.data.size(); ++i) {
                        want.data[i] += routed.data[i];
                    }
                } else {
                    cpu_.moe(x, logits, bias, c, experts, with_shared ? &shared : nullptr, want);
                }
                // FP8: every size on the tiled GEMM, and on the grouped GEMV up to 600 tokens
                // (1,500 would take the host path, checked by MoeExpertsMatchCpu).
                std::vector<bool> paths{false};
                if (fp8) {
                    paths =
                        tokens < 1500 ? std::vector<bool>{false, true} : std::vector<bool>{true};
                }
                for (bool tiled : paths) {
                    gpu_->set_moe_gemm_rows(tiled ? 1 : std::numeric_limits<std::int64_t>::max());
                    Tensor got = dev(start);
                    gpu_->moe(dev(x), dev(logits), bias, c, gexperts,
                              with_shared ? &gshared : nullptr, got);
                    // In FP8 the device's SiLU (__expf) can move an activation's e4m3 rounding
                    // by one step against the emulation's expf, which weighs up to a few 1e-3 of
                    // the output (measured 1.5e-3 at 300 tokens, 3.1e-3 at the wider shape; the
                    // dense FP8 MLP's test has the same step); where no step moves (40 tokens),
                    // 1e-4 holds. The tiled GEMM's tensor cores add FP8 products with fewer bits
                    // than float32 (cuda_moe_gemm_test measures it), and the requantization of
                    // SiLU(gate) * up turns such differences into whole e4m3 steps: measured
                    // up to 2.1e-2. Its placement of every value is checked exactly there.
                    const float tolerance = !fp8                            ? 1e-5f
                                            : tiled                         ? 5e-2f
                                            : tokens <= 40 && hidden == 256 ? 1e-4f
                                                                            : 5e-3f;
                    const float diff = rel_diff(host(got), want);
                    if (fp8) {
                        std::printf("fp8 moe, %d x %d, %d tokens%s%s: relative difference %.2e\n",
                                    hidden, inter, tokens, with_shared ? ", shared" : "",
                                    tiled ? ", tiled GEMM" : "", diff);
                    }
                    EXPECT_LE(diff, tolerance) << (fp8 ? "fp8 " : "f32 ") << tokens << " tokens"
                                               << (with_shared ? " with the shared expert" : "")
                                               << (tiled ? " on the tiled GEMM" : "");
                }
                gpu_->set_moe_gemm_rows(CudaOps::kDefaultMoeGemmRows);
            }
        }
    }
}

// Dummy weights made on the device are the host generator's values.
TEST_F(CudaOpsTest, RandomNormalMatchesTheHostGenerator) {
    model::WeightSpec spec{
        "model.layers.0.mlp.gate_proj.weight", {96, 333}, model::WeightKind::kLinear};
    const Tensor want = model::random_weight(spec, 5);
    auto got = gpu_->random_normal(spec.shape, model::random_init(spec, 5));
    ASSERT_TRUE(got.has_value());
    const Tensor h = host(*got);
    std::size_t exact = 0;
    for (std::size_t i = 0; i < want.data.size(); ++i) {
        exact += h.data[i] == want.data[i] ? 1 : 0;
        ASSERT_NEAR(h.data[i], want.data[i], 1e-6f) << i;
    }
    EXPECT_GE(exact, want.data.size() * 999 / 1000);
}

TEST_F(CudaOpsTest, Fp8MoeExpertsMatchEmulatedBlockFp8) {
    const int hidden = 256, inter = 128, num_experts = 5, top_k = 2, tokens = 11;
    std::vector<Tensor> w_ref, gw;
    for (int e = 0; e < 3 * num_experts; ++e) {
        Tensor w = e % 3 == 2 ? uneven(hidden, inter, rng_) : uneven(inter, hidden, rng_);
        w_ref.push_back(fp8_round_trip(w, 128, 128));
        gw.push_back(w);
        gpu_->to_device(gw.back(), model::Storage::fp8_block);
    }
    model::MoeRouting routing;
    routing.top_k = top_k;
    for (int t = 0; t < tokens; ++t) {
        const int a = t % num_experts, b = (t * 3 + 1) % num_experts;
        routing.experts.push_back(a);
        routing.experts.push_back(b == a ? (a + 1) % num_experts : b);
        routing.weights.push_back(0.25f + 0.05f * static_cast<float>(t));
        routing.weights.push_back(0.5f);
    }
    Tensor x = uneven(tokens, hidden, rng_);
    const Tensor want = emulated_fp8_experts(x, routing, w_ref, num_experts);
    std::vector<model::ExpertWeights> experts;
    for (int e = 0; e < num_experts; ++e) {
        const auto i = static_cast<std::size_t>(3 * e);
        experts.push_back({&gw[i], &gw[i + 1], &gw[i + 2]});
    }
    Tensor got = gpu_->zeros(tokens, hidden);
    gpu_->moe_experts(dev(x), routing, experts, got);
    EXPECT_LE(rel_diff(host(got), want), 1e-3f);
}

// kv_b_proj in block FP8 (as placement() asks for FP8 checkpoints) and in BF16, against the CPU
// computing with the dequantized weight (checked to be the host emulation first). 41 tokens run
// the absorb kernels; 120 (past kAbsorbTokens) dequantize the weight and run cuBLAS.
TEST_F(CudaOpsTest, MlaAttentionWithStoredKvBMatchesCpu) {
    const int heads = 4, nope = 32, rope = 16, v = 48, lora = 256;
    model::MlaParams p{heads, nope, rope, v, lora, 0.15f};
    for (auto storage : {model::Storage::fp8_block, model::Storage::bf16}) {
        const bool fp8 = storage == model::Storage::fp8_block;
        Tensor kv_b = random(heads * (nope + v), lora, 0.2f);
        Tensor gkv_b = kv_b;
        gpu_->to_device(gkv_b, storage);
        ASSERT_EQ(gkv_b.storage, storage);
        const Tensor w_ref = fp8 ? fp8_round_trip(kv_b, 128, 128) : bf16_round_trip(kv_b);
        EXPECT_EQ(host(gkv_b).data, w_ref.data) << "weight storage";
        for (auto [new_a, new_b] : {std::pair{1, 40}, {8, 112}}) {
            Batch batch = make_batch(150, new_a, 5, new_b, 512, rng_);
            Tensor q = random(batch.tokens, heads * (nope + rope)), latent = random(512, lora),
                   krope = random(512, rope);
            Tensor glatent = dev(latent), gkrope = dev(krope);
            model::LayerCacheView cache{&latent, &krope, nullptr},
                gcache{&glatent, &gkrope, nullptr};
            std::vector<std::vector<std::int32_t>> selected;
            for (const auto& s : batch.seqs) {
                for (int j = 0; j < s.num_new; ++j) {
                    selected.emplace_back();
                    for (int pos = s.num_cached + j; pos >= 0; pos -= 2) {
                        selected.back().insert(selected.back().begin(), pos);
                    }
                }
            }
            for (const auto* sel : {&selected, static_cast<decltype(&selected)>(nullptr)}) {
                const std::vector<std::vector<std::int32_t>> none;
                const auto& use = sel ? *sel : none;
                Tensor out(batch.tokens, heads * v), gout = gpu_->zeros(batch.tokens, heads * v);
                cpu_.mla_attention(q, batch.seqs, cache, w_ref, p, {use, nullptr}, out);
                gpu_->mla_attention(dev(q), batch.seqs, gcache, gkv_b, p, {use, nullptr}, gout);
                EXPECT_LE(rel_diff(host(gout), out), 1e-4f)
                    << (fp8 ? "fp8 " : "bf16 ") << batch.tokens << " tokens, "
                    << (sel ? "selected" : "causal");
            }
        }
    }
}

TEST_F(CudaOpsTest, Fp32PrecisionAndPartialBlocksKeepFloatWeights) {
    CudaOps fp32(0, true);
    Tensor w = random(256, 256);
    fp32.to_device(w, model::Storage::fp8_block);
    EXPECT_EQ(w.storage, model::Storage::f32);
    Tensor odd = random(576, 200);  // 200 columns: no whole 128-column groups
    gpu_->to_device(odd, model::Storage::fp8_block);
    EXPECT_EQ(odd.storage, model::Storage::f32);
    Tensor rows = random(576, 256);  // rows are padded
    gpu_->to_device(rows, model::Storage::fp8_block);
    EXPECT_EQ(rows.storage, model::Storage::fp8_block);
}

}  // namespace
}  // namespace dsserve::backend::cuda
