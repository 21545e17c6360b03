#include "model/config.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/file.h"

namespace dsserve::model {
namespace {

const std::string kData = DSSERVE_DATA_DIR;

Json official() {
    return Json::parse(read_file(kData + "/models/deepseek-v3.2/config.json"));
}

std::string error_of(const Json& j) {
    try {
        ModelConfig::from_json(j);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

TEST(ConfigTest, ParsesOfficialV32) {
    auto c = ModelConfig::from_json(official());
    EXPECT_TRUE(c.sparse_attention);
    EXPECT_EQ(c.architecture, "DeepseekV32ForCausalLM");
    EXPECT_EQ(c.num_hidden_layers, 61);
    EXPECT_EQ(c.hidden_size, 7168);
    EXPECT_EQ(c.q_lora_rank, 1536);
    EXPECT_EQ(c.kv_lora_rank, 512);
    EXPECT_EQ(c.qk_head_dim(), 192);
    EXPECT_EQ(c.n_routed_experts, 256);
    EXPECT_EQ(c.n_group, 8);
    EXPECT_EQ(c.topk_group, 4);
    EXPECT_EQ(c.index_topk, 2048);
    EXPECT_EQ(c.index_n_heads, 64);
    EXPECT_EQ(c.num_nextn_predict_layers, 1);
    EXPECT_TRUE(c.rope_scaling.yarn);
    EXPECT_EQ(c.rope_scaling.factor, 40.0);
    EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 4096);
    EXPECT_TRUE(c.quant.fp8);
    EXPECT_TRUE(c.quant.ue8m0_scales);
    EXPECT_EQ(c.quant.block_n, 128);
    EXPECT_FALSE(c.is_moe_layer(2));
    EXPECT_TRUE(c.is_moe_layer(3));
    EXPECT_TRUE(c.is_moe_layer(61));  // the MTP layer is an MoE layer too
}

TEST(ConfigTest, AmdExpConfigIsRecognisedButItsQuantizationRefused) {
    auto j = Json::parse(read_file(kData + "/models/deepseek-v3.2-exp/config.amd-quark-ptpc.json"));
    EXPECT_NE(error_of(j).find("quantization_config.quant_method 'quark'"), std::string::npos);
    j.erase("quantization_config");
    auto c = ModelConfig::from_json(j);
    EXPECT_EQ(c.index_topk, 2048);
    EXPECT_EQ(c.hidden_size, 7168);
}

TEST(ConfigTest, DeepSeekV3DenseNeedsNoIndexer) {
    auto j = official();
    j["model_type"] = "deepseek_v3";
    j["architectures"] = {"DeepseekV3ForCausalLM"};
    j.erase("index_topk");
    j.erase("index_n_heads");
    j.erase("index_head_dim");
    auto c = ModelConfig::from_json(j);
    EXPECT_FALSE(c.sparse_attention);
}

TEST(ConfigTest, MissingAndInconsistentFieldsAreNamed) {
    for (const char* key : {"hidden_size", "kv_lora_rank", "index_topk", "vocab_size",
                            "max_position_embeddings", "model_type"}) {
        auto j = official();
        j.erase(key);
        EXPECT_NE(error_of(j).find(std::string("'") + key + "'"), std::string::npos) << key;
    }
    auto j = official();
    j["n_group"] = 7;
    EXPECT_NE(error_of(j).find("'n_group'"), std::string::npos);
    j = official();
    j["topk_group"] = 9;
    EXPECT_NE(error_of(j).find("'topk_group'"), std::string::npos);
    j = official();
    j["num_key_value_heads"] = 1;
    EXPECT_NE(error_of(j).find("'num_key_value_heads'"), std::string::npos);
    j = official();
    j["qk_rope_head_dim"] = 63;
    EXPECT_NE(error_of(j).find("'qk_rope_head_dim'"), std::string::npos);
    j = official();
    j["hidden_size"] = "7168";
    EXPECT_NE(error_of(j).find("'hidden_size' must be an integer"), std::string::npos);
    j = official();
    j["num_experts_per_tok"] = 200;
    EXPECT_NE(error_of(j).find("'num_experts_per_tok'"), std::string::npos);
    j = official();
    j["model_type"] = "llama";
    EXPECT_NE(error_of(j).find("model_type 'llama'"), std::string::npos);
    j = official();
    j["quantization_config"]["weight_block_size"] = {128};
    EXPECT_NE(error_of(j).find("weight_block_size"), std::string::npos);
}

TEST(ConfigTest, OverridesLikeSglang) {
    auto j =
        apply_overrides(official(), R"({"num_hidden_layers": 8, "rope_scaling": {"factor": 4}})");
    auto c = ModelConfig::from_json(j);
    EXPECT_EQ(c.num_hidden_layers, 8);
    EXPECT_EQ(c.rope_scaling.factor, 4.0);
    EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 4096);  // merged, not replaced
    EXPECT_THROW(apply_overrides(official(), "[1]"), Error);
    EXPECT_THROW(apply_overrides(official(), "{bad"), Error);
}

TEST(ConfigTest, SoftmaxScaleIncludesYarnMscale) {
    auto c = ModelConfig::from_json(official());
    double m = 0.1 * 1.0 * std::log(40.0) + 1.0;
    EXPECT_NEAR(c.softmax_scale(), m * m / std::sqrt(192.0), 1e-12);
}

}  // namespace
}  // namespace dsserve::model
