#include "recipe/recipe.h"

#include <gtest/gtest.h>

#include <set>

#include "core/error.h"
#include "core/file.h"
#include "core/json.h"

namespace dsserve::recipe {
namespace {

Json golden() {
    return Json::parse(read_file(std::string(DSSERVE_GOLDEN_DIR) + "/recipe/recipes.json"));
}

Options make(Hardware hardware, std::optional<Model> model, std::string_view strategies = "tp",
             bool reasoning = false, bool tools = false) {
    Options options;
    options.hardware = hardware;
    options.model = model;
    apply_strategies(options, strategies);
    options.reasoning_parser = reasoning;
    options.tool_call_parser = tools;
    return options;
}

// The whole table: every combination of hardware, model, strategies and both parsers against
// tools/recipe_golden.py, an independent restatement of the guide's generator.
TEST(RecipeTest, EveryCombinationMatchesGolden) {
    Json expected = golden();
    std::vector<Options> all = all_combinations();
    ASSERT_EQ(all.size(), 4u * 5u * 8u * 2u * 2u);
    ASSERT_EQ(expected.size(), all.size());
    std::set<std::string> keys;
    for (const Options& options : all) {
        std::string key = combination_key(options);
        EXPECT_TRUE(keys.insert(key).second) << "duplicate key " << key;
        ASSERT_TRUE(expected.contains(key)) << key;
        EXPECT_EQ(make_recipe(options).text(), expected[key].get<std::string>()) << key;
    }
}

TEST(RecipeTest, DefaultIsPureTpOnH200) {
    Recipe recipe = make_recipe(Options{});
    ASSERT_TRUE(recipe.ok());
    EXPECT_EQ(recipe.command,
              "dsserve serve \\\n"
              "  --model deepseek-ai/DeepSeek-V3.2 \\\n"
              "  --tp 8");
    EXPECT_EQ(recipe.text(), recipe.command);
}

TEST(RecipeTest, DefaultModelFollowsHardware) {
    EXPECT_EQ(default_model(Hardware::kH200), Model::kV32);
    EXPECT_EQ(default_model(Hardware::kB200), Model::kV32Nvfp4);
    EXPECT_EQ(default_model(Hardware::kMi300x), Model::kV32Mxfp4);
    EXPECT_EQ(default_model(Hardware::kMi355x), Model::kV32Mxfp4);
    for (Hardware hardware : all_hardware()) {
        EXPECT_EQ(make_recipe(make(hardware, std::nullopt)).text(),
                  make_recipe(make(hardware, default_model(hardware))).text());
    }
}

TEST(RecipeTest, Nvfp4IsTheFixedB200Command) {
    EXPECT_EQ(make_recipe(make(Hardware::kB200, std::nullopt)).command,
              "dsserve serve \\\n"
              "  --model nvidia/DeepSeek-V3.2-NVFP4 \\\n"
              "  --tp 4 \\\n"
              "  --quantization modelopt_fp4 \\\n"
              "  --moe-runner-backend flashinfer_trtllm");
}

TEST(RecipeTest, Mxfp4IsTheFixedAmdCommand) {
    for (Hardware hardware : {Hardware::kMi300x, Hardware::kMi355x}) {
        EXPECT_EQ(make_recipe(make(hardware, std::nullopt)).command,
                  "dsserve serve \\\n"
                  "  --model amd/DeepSeek-V3.2-mxfp4 \\\n"
                  "  --tp 8 \\\n"
                  "  --trust-remote-code");
    }
}

TEST(RecipeTest, AmdAddsTilelangBackendsBeforeStrategies) {
    Recipe recipe = make_recipe(make(Hardware::kMi355x, Model::kV32, "tp,dp,ep,mtp", true, true));
    ASSERT_TRUE(recipe.ok()) << recipe.text();
    EXPECT_EQ(recipe.command,
              "dsserve serve \\\n"
              "  --model deepseek-ai/DeepSeek-V3.2 \\\n"
              "  --trust-remote-code \\\n"
              "  --nsa-prefill-backend tilelang \\\n"
              "  --nsa-decode-backend tilelang \\\n"
              "  --cuda-graph-max-bs 64 \\\n"
              "  --tp 8 \\\n"
              "  --dp 8 \\\n"
              "  --enable-dp-attention \\\n"
              "  --ep 8 \\\n"
              "  --speculative-algorithm EAGLE \\\n"
              "  --speculative-num-steps 3 \\\n"
              "  --speculative-eagle-topk 1 \\\n"
              "  --speculative-num-draft-tokens 4 \\\n"
              "  --tool-call-parser deepseekv32 \\\n"
              "  --reasoning-parser deepseek-v3");
}

TEST(RecipeTest, ExpUsesV31ParserAndTheV32ToolTemplate) {
    Recipe recipe = make_recipe(make(Hardware::kH200, Model::kV32Exp, "tp", true, true));
    EXPECT_EQ(recipe.command,
              "dsserve serve \\\n"
              "  --model deepseek-ai/DeepSeek-V3.2-Exp \\\n"
              "  --tp 8 \\\n"
              "  --tool-call-parser deepseekv31 \\\n"
              "  --reasoning-parser deepseek-v3 \\\n"
              "  --chat-template ./data/chat_templates/tool_chat_template_deepseekv32.jinja");
    // No template without tool calling.
    EXPECT_EQ(make_recipe(make(Hardware::kH200, Model::kV32Exp, "tp", true)).command,
              "dsserve serve \\\n"
              "  --model deepseek-ai/DeepSeek-V3.2-Exp \\\n"
              "  --tp 8 \\\n"
              "  --reasoning-parser deepseek-v3");
}

TEST(RecipeTest, ImpossibleCombinationsUseTheGuidesWords) {
    Recipe speciale = make_recipe(make(Hardware::kH200, Model::kV32Speciale, "tp", true, true));
    EXPECT_FALSE(speciale.ok());
    EXPECT_TRUE(speciale.command.empty());
    EXPECT_EQ(speciale.text(),
              "# Error: DeepSeek-V3.2-Speciale doesn't support tool calling\n"
              "# Please select \"Disabled\" for Tool Call Parser or choose a different model");
    EXPECT_EQ(make_recipe(make(Hardware::kH200, Model::kV32Nvfp4)).text(),
              "# Error: DeepSeek-V3.2-NVFP4 requires NVIDIA B200 (Blackwell) hardware\n"
              "# Please select \"B200\" for Hardware Platform or choose a different model");
    EXPECT_EQ(make_recipe(make(Hardware::kB200, Model::kV32Mxfp4)).text(),
              "# Error: DeepSeek-V3.2-MXFP4 requires AMD MI300X/MI355X hardware\n"
              "# Please select \"MI300X\" or \"MI355X\" for Hardware Platform or choose a "
              "different model");
    // Hardware is checked first, as in the guide.
    EXPECT_EQ(make_recipe(make(Hardware::kH200, Model::kV32Nvfp4, "tp,dp", true, true)).error,
              "DeepSeek-V3.2-NVFP4 requires NVIDIA B200 (Blackwell) hardware");
    Recipe fixed = make_recipe(make(Hardware::kB200, Model::kV32Nvfp4, "tp,mtp", true));
    EXPECT_EQ(fixed.error,
              "DeepSeek-V3.2-NVFP4 uses a fixed configuration without \"Multi-token Prediction\"");
    EXPECT_EQ(fixed.hint,
              "Please deselect \"Multi-token Prediction\" for Deployment Strategy or choose a "
              "different model");
}

TEST(RecipeTest, SpecialeWithoutToolsIsFine) {
    Recipe recipe = make_recipe(make(Hardware::kB200, Model::kV32Speciale, "tp,dp", true));
    EXPECT_EQ(recipe.command,
              "dsserve serve \\\n"
              "  --model deepseek-ai/DeepSeek-V3.2-Speciale \\\n"
              "  --tp 8 \\\n"
              "  --dp 8 \\\n"
              "  --enable-dp-attention \\\n"
              "  --reasoning-parser deepseek-v3");
}

TEST(RecipeTest, StrategiesParse) {
    Options options;
    apply_strategies(options, "mtp,tp,dp");
    EXPECT_TRUE(options.dp_attention);
    EXPECT_FALSE(options.expert_parallel);
    EXPECT_TRUE(options.mtp);
    apply_strategies(options, "");
    EXPECT_THROW(apply_strategies(options, "tp,pp"), Error);
    EXPECT_THROW(apply_strategies(options, "dp,"), Error);
}

TEST(RecipeTest, IdsRoundTrip) {
    for (Hardware hardware : all_hardware()) {
        EXPECT_EQ(parse_hardware(hardware_id(hardware)), hardware);
    }
    for (Model model : all_models()) {
        EXPECT_EQ(parse_model(model_id(model)), model);
    }
    EXPECT_EQ(parse_hardware("a100"), std::nullopt);
    EXPECT_EQ(parse_model("v3"), std::nullopt);
    EXPECT_EQ(model_label(Model::kV32Mxfp4), "DeepSeek-V3.2-MXFP4");
}

TEST(RecipeTest, TableHoldsEveryCombinationsText) {
    Json table = table_json();
    const Json& texts = table["texts"];
    const Json& recipes = table["recipes"];
    ASSERT_EQ(recipes.size(), all_combinations().size());
    for (const Options& options : all_combinations()) {
        std::string key = combination_key(options);
        ASSERT_TRUE(recipes.contains(key)) << key;
        EXPECT_EQ(texts.at(recipes[key].get<size_t>()).get<std::string>(),
                  make_recipe(options).text())
            << key;
    }
    EXPECT_EQ(table["defaults"]["hardware"], "h200");
    EXPECT_EQ(table["defaults"]["modelname"], "v32");
    EXPECT_EQ(table["default_model"]["b200"], "v32nvfp4");
    EXPECT_EQ(table["default_model"]["mi300x"], "v32mxfp4");
    ASSERT_EQ(table["options"].size(), 5u);
    EXPECT_EQ(table["options"][2]["title"], "Deployment Strategy");
    EXPECT_EQ(table["options"][2]["items"][0]["required"], true);
}

TEST(RecipeTest, TableSaysWhyChoicesAreUnavailable) {
    Json unavailable = table_json()["unavailable"];
    EXPECT_EQ(unavailable["h200 v32"]["modelname v32nvfp4"], "NVFP4 requires B200 (Blackwell)");
    EXPECT_EQ(unavailable["h200 v32"]["modelname v32mxfp4"], "MXFP4 requires AMD MI300X/MI355X");
    EXPECT_FALSE(unavailable["b200 v32"].contains("modelname v32nvfp4"));
    EXPECT_FALSE(unavailable["mi300x v32"].contains("modelname v32mxfp4"));
    EXPECT_FALSE(unavailable["h200 v32"].contains("toolcall enabled"));
    EXPECT_EQ(unavailable["h200 v32speciale"]["toolcall enabled"],
              "DeepSeek-V3.2-Speciale doesn't support tool calling");
    EXPECT_EQ(unavailable["b200 v32nvfp4"]["strategy dp"],
              "DeepSeek-V3.2-NVFP4 uses a fixed configuration");
    EXPECT_EQ(unavailable["mi355x v32mxfp4"]["reasoningParser enabled"],
              "DeepSeek-V3.2-MXFP4 uses a fixed configuration");
    EXPECT_EQ(unavailable["h200 v32"]["strategy tp"], "TP is always on");
}

}  // namespace
}  // namespace dsserve::recipe
