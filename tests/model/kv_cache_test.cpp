// The MLA cache's storage: a bfloat16 table holds what a device's BF16 cache would (every value
// rounded to nearest even at the write), and the pool's per-token size follows the storage (and
// the indexer's key storage, which follows it).
#include "model/kv_cache.h"

#include <gtest/gtest.h>

#include <cmath>

#include "backend/backend.h"
#include "core/dtype.h"
#include "core/error.h"
#include "model/make_model.h"

namespace dsserve::model {
namespace {

ModelConfig tiny() {
    return ModelConfig::from_json(preset_config("tiny", 0));
}

TEST(KvCache, BytesPerTokenFollowTheMlaStorage) {
    const ModelConfig c = tiny();
    const auto layers = static_cast<std::size_t>(c.num_hidden_layers + c.num_nextn_predict_layers);
    const auto mla = static_cast<std::size_t>(c.kv_lora_rank + c.qk_rope_head_dim);
    const auto index = static_cast<std::size_t>(c.index_head_dim);
    EXPECT_EQ(KvCache::bytes_per_token(c), layers * (mla + index) * 4);
    // Beside a bfloat16 cache the indexer's keys are FP8: a byte a value and a scale a row.
    EXPECT_EQ(KvCache::bytes_per_token(c, Storage::bf16), layers * (mla * 2 + index + 4));
}

TEST(KvCache, Bf16TablesHoldRoundedValuesAndFloat32TablesExactOnes) {
    const ModelConfig c = tiny();
    auto ops = backend::make_backend({});
    KvCache f32(c, 8, *ops), bf16(c, 8, *ops, Storage::bf16);
    EXPECT_THROW(KvCache(c, 8, *ops, Storage::fp8_block), Error);
    Tensor rows = ops->zeros(2, c.kv_lora_rank);
    for (std::int64_t i = 0; i < rows.numel(); ++i) {
        rows.data[static_cast<std::size_t>(i)] = 1.0f + static_cast<float>(i) * 1.0e-3f;
    }
    const std::vector<std::int32_t> slots = {5, 2};
    ops->scatter_rows(rows, slots, *f32.layer(0).latent);
    ops->scatter_rows(rows, slots, *bf16.layer(0).latent);
    int changed = 0;
    for (std::size_t r = 0; r < slots.size(); ++r) {
        const float* src = rows.row(static_cast<std::int64_t>(r));
        const float* exact = f32.layer(0).latent->row(slots[r]);
        const float* rounded = bf16.layer(0).latent->row(slots[r]);
        for (int d = 0; d < c.kv_lora_rank; ++d) {
            EXPECT_EQ(exact[d], src[d]);
            EXPECT_EQ(rounded[d], bf16_to_float(float_to_bf16(src[d])));
            changed += rounded[d] != src[d];
        }
    }
    EXPECT_GT(changed, c.kv_lora_rank);  // the rounding did happen
    EXPECT_EQ(bf16.layer(0).rope->storage, Storage::bf16);
    EXPECT_EQ(bf16.layer(0).index_k->storage, Storage::fp8_row);  // the indexer's keys in FP8
    EXPECT_EQ(f32.layer(0).index_k->storage, Storage::f32);
}

}  // namespace
}  // namespace dsserve::model
