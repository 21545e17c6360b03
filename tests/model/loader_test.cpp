#include "model/loader.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"
#include "core/file.h"
#include "model/deepseek_v32.h"
#include "model/make_model.h"
#include "model/weights.h"

namespace dsserve::model {
namespace {

namespace fs = std::filesystem;

class LoaderTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               (std::string("dsserve_loader_") +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }
    fs::path dir_;
};

// Every linear weight of an FP8 checkpoint, kv_b_proj included, is asked for in block FP8; a
// backend keeps float32 where it cannot or is told not to.
TEST(PlacementTest, Fp8CheckpointsPlaceEveryLinearInFp8) {
    ModelConfig c = ModelConfig::from_json(preset_config("tiny", 1));
    c.quant.fp8 = true;
    int linears = 0, kv_b = 0;
    for (const WeightSpec& spec : weight_manifest(c)) {
        const auto where = DeepseekV32::placement(spec, c);
        if (spec.kind == WeightKind::kLinear) {
            ++linears;
            EXPECT_EQ(where, Storage::fp8_block) << spec.name;
        }
        if (spec.name.ends_with("kv_b_proj.weight")) {
            ++kv_b;
            EXPECT_EQ(spec.kind, WeightKind::kLinear);
            EXPECT_EQ(where, Storage::fp8_block);
            c.quant.fp8 = false;
            EXPECT_EQ(DeepseekV32::placement(spec, c), Storage::f32) << "float32 checkpoint";
            c.quant.fp8 = true;
        }
    }
    EXPECT_GT(linears, 0);
    EXPECT_GT(kv_b, 0);
}

// A 2x3 FP8 weight with 1x2 blocks: scales [[0.5, 4], [2, 0.25]].
// fp8 codes: 0x38 = 1.0, 0x40 = 2.0, 0xbc = -1.5, 0x30 = 0.5, 0x44 = 3.0, 0x3c = 1.5.
TEST_F(LoaderTest, DequantizesBlocksWithFloatAndE8M0Scales) {
    std::vector<std::uint8_t> codes = {0x38, 0x40, 0xbc, 0x30, 0x44, 0x3c};
    float expected[6] = {1.0f * 0.5f, 2.0f * 0.5f, -1.5f * 4.0f,
                         0.5f * 2.0f, 3.0f * 2.0f, 1.5f * 0.25f};
    for (bool e8m0 : {false, true}) {
        SafetensorsWriter w;
        w.add("w", DType::kF8E4M3, {2, 3}, codes);
        if (e8m0) {
            // 2^(b - 127): 126 -> 0.5, 129 -> 4, 128 -> 2, 125 -> 0.25
            w.add("w_scale_inv", DType::kF8E8M0, {2, 2}, {126, 129, 128, 125});
        } else {
            std::vector<float> s = {0.5f, 4.0f, 2.0f, 0.25f};
            std::vector<std::uint8_t> bytes(16);
            std::memcpy(bytes.data(), s.data(), 16);
            w.add("w_scale_inv", DType::kF32, {2, 2}, bytes);
        }
        w.write(dir_ / "model.safetensors");
        Checkpoint ckpt(dir_);
        Tensor t = decode_tensor(ckpt.at("w"), ckpt.find("w_scale_inv"), 1, 2);
        ASSERT_EQ(t.numel(), 6);
        for (int i = 0; i < 6; ++i) {
            EXPECT_EQ(t.data[i], expected[i]) << "e8m0=" << e8m0 << " i=" << i;
        }
    }
}

TEST_F(LoaderTest, Fp8WithoutScaleOrWrongScaleShapeIsAnError) {
    SafetensorsWriter w;
    w.add("w", DType::kF8E4M3, {2, 3}, std::vector<std::uint8_t>(6, 0x38));
    w.add("w_scale_inv", DType::kF32, {1, 1}, std::vector<std::uint8_t>(4, 0));
    w.write(dir_ / "model.safetensors");
    Checkpoint ckpt(dir_);
    EXPECT_THROW(decode_tensor(ckpt.at("w"), nullptr, 1, 2), Error);
    try {
        decode_tensor(ckpt.at("w"), ckpt.find("w_scale_inv"), 1, 2);
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("w_scale_inv"), std::string::npos) << e.what();
    }
}

Json tiny_overrides(Json c) {
    c["vocab_size"] = 512;
    c["num_hidden_layers"] = 2;
    return c;
}

TEST_F(LoaderTest, ChecksManifestShapesAndNamesMissingTensors) {
    MakeModelOptions o;
    o.output = dir_ / "m";
    o.config = tiny_overrides(preset_config("tiny", 0));
    make_model(o);
    auto config = ModelConfig::load(o.output);
    ThreadPool pool(2);
    auto loaded = load_weights(config, o.output, {}, pool);
    EXPECT_TRUE(loaded.mtp_loaded);
    EXPECT_EQ(loaded.store.at("model.layers.1.mlp.experts.7.down_proj.weight").shape,
              (std::vector<std::int64_t>{128, 64}));

    // A config that disagrees with the files: the error names the tensor and both shapes.
    auto wrong = ModelConfig::load(o.output, R"({"moe_intermediate_size": 32})");
    try {
        load_weights(wrong, o.output, {}, pool);
        FAIL();
    } catch (const Error& e) {
        std::string msg = e.what();
        EXPECT_NE(msg.find("gate_proj.weight has shape [64,128] but the config needs [32,128]"),
                  std::string::npos)
            << msg;
    }
    // More layers than the checkpoint has: the missing tensor is named.
    for (const char* layers : {R"({"num_hidden_layers": 3})", R"({"num_hidden_layers": 4})"}) {
        auto more = ModelConfig::load(o.output, layers);
        try {
            load_weights(more, o.output, {}, pool);
            FAIL() << layers;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find("layer"), std::string::npos) << e.what();
        }
    }
    // Fewer layers than the checkpoint has is fine (SGLang's override for benchmarking); the MTP
    // layer is then absent at the expected index and is skipped.
    auto fewer = ModelConfig::load(o.output, R"({"num_hidden_layers": 1})");
    EXPECT_FALSE(load_weights(fewer, o.output, {}, pool).mtp_loaded);
}

TEST_F(LoaderTest, DummyWeightsAreDeterministicAndNeedNoFiles) {
    Json c = tiny_overrides(preset_config("tiny", 0));
    fs::create_directories(dir_ / "d");
    write_file(dir_ / "d" / "config.json", c.dump());
    auto config = ModelConfig::load(dir_ / "d");
    ThreadPool pool(2);
    LoadOptions opt;
    opt.dummy = true;
    opt.seed = 5;
    auto a = load_weights(config, dir_ / "d", opt, pool);
    auto b = load_weights(config, dir_ / "d", opt, pool);
    EXPECT_EQ(a.store.at("lm_head.weight").data, b.store.at("lm_head.weight").data);
    opt.seed = 6;
    auto d = load_weights(config, dir_ / "d", opt, pool);
    EXPECT_NE(a.store.at("lm_head.weight").data, d.store.at("lm_head.weight").data);
}

TEST_F(LoaderTest, WriterShardsLikeTheRelease) {
    MakeModelOptions o;
    o.output = dir_ / "m";
    o.config = preset_config("tiny", 0);
    o.config["vocab_size"] = 4096;
    o.max_shard_bytes = 1 << 20;
    make_model(o);
    Json index = Json::parse(read_file(o.output / "model.safetensors.index.json"));
    std::set<std::string> shards;
    for (const auto& [name, file] : index["weight_map"].items()) {
        shards.insert(file.get<std::string>());
    }
    EXPECT_GT(shards.size(), 2u);
    EXPECT_TRUE(
        index["weight_map"].contains("model.layers.0.self_attn.indexer.wq_b.weight_scale_inv"));
    EXPECT_TRUE(index["weight_map"].contains("model.layers.4.eh_proj.weight"));  // MTP layer
    EXPECT_TRUE(fs::exists(o.output / "tokenizer.json"));
    EXPECT_TRUE(fs::exists(o.output / "generation_config.json"));
    Json cfg = Json::parse(read_file(o.output / "config.json"));
    EXPECT_EQ(cfg["quantization_config"]["quant_method"], "fp8");
}

}  // namespace
}  // namespace dsserve::model
