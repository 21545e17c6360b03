#include "model/rope.h"

#include <gtest/gtest.h>

#include "core/file.h"

namespace dsserve::model {
namespace {

// tests/golden/model/rope.json: transformers' values (tools/reference/rope_reference.py).
TEST(RopeTest, MatchesTransformersYarnAndPlain) {
    Json golden = Json::parse(read_file(std::string(DSSERVE_GOLDEN_DIR) + "/model/rope.json"));
    Json base =
        Json::parse(read_file(std::string(DSSERVE_DATA_DIR) + "/models/deepseek-v3.2/config.json"));
    for (const char* name : {"official", "plain"}) {
        Json cfg = base;
        if (std::string(name) == "plain") {
            cfg.erase("rope_scaling");
            cfg["rope_theta"] = 50000.0;
        }
        auto c = ModelConfig::from_json(cfg);
        auto table = rope_frequencies(c);
        const auto& g = golden[name];
        ASSERT_EQ(table.inv_freq.size(), g["inv_freq"].size());
        for (std::size_t i = 0; i < table.inv_freq.size(); ++i) {
            double want = g["inv_freq"][i].get<double>();
            EXPECT_NEAR(table.inv_freq[i], want, 2e-7 * std::abs(want) + 1e-12) << name << " " << i;
        }
        EXPECT_FLOAT_EQ(table.attention_factor, g["attention_factor"].get<float>()) << name;
        EXPECT_NEAR(c.softmax_scale(), g["softmax_scale"].get<double>(), 1e-9) << name;
    }
}

TEST(RopeTest, YarnInterpolatesOnlyLowFrequencies) {
    Json base =
        Json::parse(read_file(std::string(DSSERVE_DATA_DIR) + "/models/deepseek-v3.2/config.json"));
    auto c = ModelConfig::from_json(base);
    auto table = rope_frequencies(c);
    // Highest frequency untouched; lowest divided by the factor.
    EXPECT_FLOAT_EQ(table.inv_freq.front(), 1.0f);
    float plain_last = 1.0f / std::pow(10000.0f, 62.0f / 64.0f);
    EXPECT_NEAR(table.inv_freq.back(), plain_last / 40.0f, 1e-9);
}

}  // namespace
}  // namespace dsserve::model
