// The deployment-command generator of SGLang's DeepSeek-V3.2 cookbook page, for dsserve: a pure
// function from the five choices the page offers (hardware, model variant, deployment strategy,
// reasoning parser, tool-call parser) to either a `dsserve serve` command or the reason the
// combination is impossible, worded as the guide words it.
//
// Rules (sgl-project/sglang: docs/src/snippets/autoregressive/deepseek-v32-deployment.jsx, the
// component behind docs/cookbook/autoregressive/DeepSeek/DeepSeek-V3_2.mdx):
// - the default model is NVFP4 on B200, MXFP4 on AMD (MI300X, MI355X), DeepSeek-V3.2 elsewhere;
//   NVFP4 runs only on B200 and MXFP4 only on AMD;
// - TP 8 is always on; DP attention, EP (size 8) and MTP (EAGLE, 3 steps, top-k 1, 4 draft
//   tokens) are options; AMD adds --trust-remote-code, the tilelang NSA backends and CUDA-graph
//   batch 64;
// - tool calling uses deepseekv32 on V3.2 and deepseekv31 plus the V3.2 tool template on
//   V3.2-Exp; Speciale has no tool calling;
// - NVFP4 and MXFP4 are fixed commands. The guide's page hides the other choices for them; here a
//   strategy or parser asked for with them is an error rather than silently dropped.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"

namespace dsserve::recipe {

enum class Hardware { kH200, kB200, kMi300x, kMi355x };
enum class Model { kV32, kV32Speciale, kV32Exp, kV32Nvfp4, kV32Mxfp4 };

struct Options {
    Hardware hardware = Hardware::kH200;
    std::optional<Model> model;  // unset: the hardware's default model
    bool dp_attention = false;
    bool expert_parallel = false;
    bool mtp = false;
    bool reasoning_parser = false;
    bool tool_call_parser = false;
};

struct Recipe {
    std::string command;  // "dsserve serve \\\n  --model ..."; empty when impossible
    std::string error;    // why the combination is impossible, e.g. "DeepSeek-V3.2-Speciale ..."
    std::string hint;  // what to change, e.g. "Please select \"Disabled\" for Tool Call Parser ..."

    bool ok() const { return error.empty(); }
    // What the guide's page shows: the command, or "# Error: <error>\n# <hint>".
    std::string text() const;
};

Recipe make_recipe(const Options& options);

Model default_model(Hardware hardware);
std::string_view hardware_id(Hardware hardware);  // "h200"
std::string_view model_id(Model model);           // "v32speciale"
std::string_view model_label(Model model);        // "DeepSeek-V3.2-Speciale"
std::optional<Hardware> parse_hardware(std::string_view id);
std::optional<Model> parse_model(std::string_view id);
std::span<const Hardware> all_hardware();
std::span<const Model> all_models();

// Applies "tp,dp,ep,mtp" (any subset, any order; tp is implied) to `options`. Throws
// dsserve::Error naming an unknown strategy.
void apply_strategies(Options& options, std::string_view list);

// Every combination of the five choices, each with an explicit model: 4 x 5 x 8 x 2 x 2 = 640.
std::vector<Options> all_combinations();

// One line per combination: "<hardware> <model> <strategies> <reasoning> <toolcall>", e.g.
// "h200 v32 tp,dp disabled enabled"; the web page builds the same key from its state.
std::string combination_key(const Options& options);

// Everything the web page needs, computed here so the page never restates a rule: the options
// with their labels, the default state, the default model per hardware, why a choice is
// unavailable in a given hardware/model state, and the text of every combination.
Json table_json();

}  // namespace dsserve::recipe
