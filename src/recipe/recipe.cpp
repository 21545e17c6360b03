#include "recipe/recipe.h"

#include <algorithm>
#include <array>
#include <map>

#include "core/error.h"

namespace dsserve::recipe {
namespace {

constexpr std::string_view kTpFlag = "--tp 8";
constexpr std::string_view kTpId = "tp";
constexpr std::string_view kTpLabel = "TP";

struct HardwareRow {
    Hardware hardware;
    std::string_view id;
    std::string_view label;
    bool amd;
    Model default_model;
};

// Order is the page's button order.
constexpr std::array kHardware = {
    HardwareRow{Hardware::kH200, "h200", "H200", false, Model::kV32},
    HardwareRow{Hardware::kB200, "b200", "B200", false, Model::kV32Nvfp4},
    HardwareRow{Hardware::kMi300x, "mi300x", "MI300X", true, Model::kV32Mxfp4},
    HardwareRow{Hardware::kMi355x, "mi355x", "MI355X", true, Model::kV32Mxfp4},
};

// ROCm needs the tilelang sparse-attention kernels and a smaller CUDA-graph batch (the guide's
// MI355X recipe, applied to every AMD part).
constexpr std::array<std::string_view, 4> kAmdFlags = {
    "--trust-remote-code",
    "--nsa-prefill-backend tilelang",
    "--nsa-decode-backend tilelang",
    "--cuda-graph-max-bs 64",
};

constexpr std::array<std::string_view, 3> kNvfp4Flags = {
    "--tp 4",
    "--quantization modelopt_fp4",
    "--moe-runner-backend flashinfer_trtllm",
};
constexpr std::array<std::string_view, 2> kMxfp4Flags = {
    "--tp 8",
    "--trust-remote-code",
};

constexpr unsigned bit(Hardware hardware) {
    return 1u << static_cast<unsigned>(hardware);
}
constexpr unsigned kAnyHardware =
    bit(Hardware::kH200) | bit(Hardware::kB200) | bit(Hardware::kMi300x) | bit(Hardware::kMi355x);
constexpr unsigned kAmdHardware = bit(Hardware::kMi300x) | bit(Hardware::kMi355x);

struct ModelRow {
    Model model;
    std::string_view id;
    std::string_view label;
    std::string_view repo;
    unsigned runs_on;                 // bit(Hardware) set
    std::string_view unavailable;     // on the page's disabled button
    std::string_view hardware_error;  // when asked for on other hardware
    std::string_view hardware_hint;
    std::string_view tool_parser;    // empty: no tool calling
    std::string_view tool_template;  // chat template that carries the tools, if needed
    std::span<const std::string_view> fixed_flags;  // non-empty: one command, no other choices
};

// The V3.2 tool template ships in the repository (data/chat_templates/, copied from SGLang's
// examples/chat_template/), so the path is relative to a dsserve checkout.
constexpr std::string_view kV32ToolTemplate =
    "./data/chat_templates/tool_chat_template_deepseekv32.jinja";

constexpr std::array kModels = {
    ModelRow{Model::kV32,
             "v32",
             "DeepSeek-V3.2",
             "deepseek-ai/DeepSeek-V3.2",
             kAnyHardware,
             "",
             "",
             "",
             "deepseekv32",
             "",
             {}},
    ModelRow{Model::kV32Speciale,
             "v32speciale",
             "DeepSeek-V3.2-Speciale",
             "deepseek-ai/DeepSeek-V3.2-Speciale",
             kAnyHardware,
             "",
             "",
             "",
             "",
             "",
             {}},
    ModelRow{Model::kV32Exp,
             "v32exp",
             "DeepSeek-V3.2-Exp",
             "deepseek-ai/DeepSeek-V3.2-Exp",
             kAnyHardware,
             "",
             "",
             "",
             "deepseekv31",
             kV32ToolTemplate,
             {}},
    ModelRow{Model::kV32Nvfp4, "v32nvfp4", "DeepSeek-V3.2-NVFP4", "nvidia/DeepSeek-V3.2-NVFP4",
             bit(Hardware::kB200), "NVFP4 requires B200 (Blackwell)",
             "DeepSeek-V3.2-NVFP4 requires NVIDIA B200 (Blackwell) hardware",
             "Please select \"B200\" for Hardware Platform or choose a different model",
             "deepseekv32", "", kNvfp4Flags},
    ModelRow{Model::kV32Mxfp4, "v32mxfp4", "DeepSeek-V3.2-MXFP4", "amd/DeepSeek-V3.2-mxfp4",
             kAmdHardware, "MXFP4 requires AMD MI300X/MI355X",
             "DeepSeek-V3.2-MXFP4 requires AMD MI300X/MI355X hardware",
             "Please select \"MI300X\" or \"MI355X\" for Hardware Platform or choose a different "
             "model",
             "deepseekv32", "", kMxfp4Flags},
};

// The choices after hardware and model, in the page's order. A fixed-command model offers none
// of them.
struct ToggleRow {
    bool Options::*field;
    std::string_view option;  // the page's option name
    std::string_view item;    // the page's item id
    std::string_view label;   // the button's label
    std::string_view hint;    // how to turn it off, in the guide's words
};

constexpr std::array kToggles = {
    ToggleRow{&Options::dp_attention, "strategy", "dp", "DP attention",
              "deselect \"DP attention\" for Deployment Strategy"},
    ToggleRow{&Options::expert_parallel, "strategy", "ep", "EP",
              "deselect \"EP\" for Deployment Strategy"},
    ToggleRow{&Options::mtp, "strategy", "mtp", "Multi-token Prediction",
              "deselect \"Multi-token Prediction\" for Deployment Strategy"},
    ToggleRow{&Options::reasoning_parser, "reasoningParser", "enabled", "Reasoning Parser",
              "select \"Disabled\" for Reasoning Parser"},
    ToggleRow{&Options::tool_call_parser, "toolcall", "enabled", "Tool Call Parser",
              "select \"Disabled\" for Tool Call Parser"},
};

// Flags each strategy adds, in command order. DP attention spans all 8 GPUs (dp = tp); MTP
// drafts with the checkpoint's own MTP layer: 3 steps of top-1, 4 tokens verified per round.
constexpr std::array<std::string_view, 2> kDpFlags = {"--dp 8", "--enable-dp-attention"};
constexpr std::array<std::string_view, 1> kEpFlags = {"--ep 8"};
constexpr std::array<std::string_view, 4> kMtpFlags = {
    "--speculative-algorithm EAGLE",
    "--speculative-num-steps 3",
    "--speculative-eagle-topk 1",
    "--speculative-num-draft-tokens 4",
};
struct StrategyFlags {
    bool Options::*field;
    std::span<const std::string_view> flags;
};
constexpr std::array kStrategyFlags = {
    StrategyFlags{&Options::dp_attention, kDpFlags},
    StrategyFlags{&Options::expert_parallel, kEpFlags},
    StrategyFlags{&Options::mtp, kMtpFlags},
};

constexpr std::string_view kReasoningFlag = "--reasoning-parser deepseek-v3";

const HardwareRow& row(Hardware hardware) {
    for (const HardwareRow& r : kHardware) {
        if (r.hardware == hardware) {
            return r;
        }
    }
    DS_ASSERT(false, "hardware ", static_cast<int>(hardware));
}

const ModelRow& row(Model model) {
    for (const ModelRow& r : kModels) {
        if (r.model == model) {
            return r;
        }
    }
    DS_ASSERT(false, "model ", static_cast<int>(model));
}

Recipe impossible(std::string error, std::string hint) {
    Recipe recipe;
    recipe.error = std::move(error);
    recipe.hint = std::move(hint);
    return recipe;
}

// The first check that fails, in the guide's order: hardware, tool calling, then (dsserve's
// addition) a choice that a fixed-command model does not offer.
std::optional<Recipe> check(const Options& options, const ModelRow& model) {
    if ((model.runs_on & bit(options.hardware)) == 0) {
        return impossible(std::string(model.hardware_error), std::string(model.hardware_hint));
    }
    if (model.fixed_flags.empty()) {
        if (options.tool_call_parser && model.tool_parser.empty()) {
            return impossible(str_cat(model.label, " doesn't support tool calling"),
                              "Please select \"Disabled\" for Tool Call Parser or choose a "
                              "different model");
        }
        return std::nullopt;
    }
    for (const ToggleRow& toggle : kToggles) {
        if (options.*toggle.field) {
            return impossible(
                str_cat(model.label, " uses a fixed configuration without \"", toggle.label, "\""),
                str_cat("Please ", toggle.hint, " or choose a different model"));
        }
    }
    return std::nullopt;
}

// One flag per line, as the guide prints it: "dsserve serve \\\n  --model <repo> \\\n  --tp 8".
std::string command(std::string_view repo, const std::vector<std::string>& flags) {
    std::string out = str_cat("dsserve serve \\\n  --model ", repo);
    for (const std::string& flag : flags) {
        out += " \\\n  ";
        out += flag;
    }
    return out;
}

}  // namespace

std::string Recipe::text() const {
    if (ok()) {
        return command;
    }
    return str_cat("# Error: ", error, "\n# ", hint);
}

Recipe make_recipe(const Options& options) {
    const ModelRow& model = row(options.model.value_or(default_model(options.hardware)));
    if (std::optional<Recipe> failed = check(options, model)) {
        return *failed;
    }
    std::vector<std::string> flags;
    auto add = [&flags](std::span<const std::string_view> list) {
        flags.insert(flags.end(), list.begin(), list.end());
    };
    if (!model.fixed_flags.empty()) {
        add(model.fixed_flags);
    } else {
        if (row(options.hardware).amd) {
            add(kAmdFlags);
        }
        flags.emplace_back(kTpFlag);
        for (const StrategyFlags& strategy : kStrategyFlags) {
            if (options.*strategy.field) {
                add(strategy.flags);
            }
        }
        if (options.tool_call_parser) {
            flags.push_back(str_cat("--tool-call-parser ", model.tool_parser));
        }
        if (options.reasoning_parser) {
            flags.emplace_back(kReasoningFlag);
        }
        if (options.tool_call_parser && !model.tool_template.empty()) {
            flags.push_back(str_cat("--chat-template ", model.tool_template));
        }
    }
    Recipe recipe;
    recipe.command = command(model.repo, flags);
    return recipe;
}

Model default_model(Hardware hardware) {
    return row(hardware).default_model;
}
std::string_view hardware_id(Hardware hardware) {
    return row(hardware).id;
}
std::string_view model_id(Model model) {
    return row(model).id;
}
std::string_view model_label(Model model) {
    return row(model).label;
}

std::optional<Hardware> parse_hardware(std::string_view id) {
    for (const HardwareRow& r : kHardware) {
        if (r.id == id) {
            return r.hardware;
        }
    }
    return std::nullopt;
}

std::optional<Model> parse_model(std::string_view id) {
    for (const ModelRow& r : kModels) {
        if (r.id == id) {
            return r.model;
        }
    }
    return std::nullopt;
}

namespace {
template <typename Row, size_t N, typename Field>
constexpr auto column(const std::array<Row, N>& rows, Field Row::*field) {
    std::array<Field, N> out{};
    for (size_t i = 0; i < N; ++i) {
        out[i] = rows[i].*field;
    }
    return out;
}
}  // namespace

std::span<const Hardware> all_hardware() {
    static constexpr auto kAll = column(kHardware, &HardwareRow::hardware);
    return kAll;
}

std::span<const Model> all_models() {
    static constexpr auto kAll = column(kModels, &ModelRow::model);
    return kAll;
}

void apply_strategies(Options& options, std::string_view list) {
    if (list.empty()) {
        return;
    }
    for (size_t begin = 0; begin <= list.size();) {
        size_t end = std::min(list.find(',', begin), list.size());
        std::string_view id = list.substr(begin, end - begin);
        begin = end + 1;
        if (id == kTpId) {
            continue;  // always on
        }
        bool known = false;
        for (const ToggleRow& toggle : kToggles) {
            if (toggle.option == "strategy" && toggle.item == id) {
                options.*toggle.field = true;
                known = true;
            }
        }
        DS_CHECK(known, "unknown strategy '", id, "' (expected tp, dp, ep or mtp)");
    }
}

std::vector<Options> all_combinations() {
    std::vector<Options> out;
    for (Hardware hardware : all_hardware()) {
        for (Model model : all_models()) {
            for (unsigned bits = 0; bits < 32; ++bits) {
                Options options;
                options.hardware = hardware;
                options.model = model;
                options.dp_attention = bits & 1;
                options.expert_parallel = bits & 2;
                options.mtp = bits & 4;
                options.reasoning_parser = bits & 8;
                options.tool_call_parser = bits & 16;
                out.push_back(options);
            }
        }
    }
    return out;
}

std::string combination_key(const Options& options) {
    Model model = options.model.value_or(default_model(options.hardware));
    std::string strategies(kTpId);
    for (const ToggleRow& toggle : kToggles) {
        if (toggle.option == "strategy" && options.*toggle.field) {
            strategies += str_cat(",", toggle.item);
        }
    }
    auto state = [](bool on) { return on ? "enabled" : "disabled"; };
    return str_cat(hardware_id(options.hardware), " ", model_id(model), " ", strategies, " ",
                   state(options.reasoning_parser), " ", state(options.tool_call_parser));
}

namespace {

Json item(std::string_view id, std::string_view label) {
    return Json{{"id", id}, {"label", label}};
}

Json options_json() {
    Json hardware = Json::array();
    for (const HardwareRow& r : kHardware) {
        hardware.push_back(item(r.id, r.label));
    }
    Json models = Json::array();
    for (const ModelRow& r : kModels) {
        models.push_back(item(r.id, r.label));
    }
    Json strategy = Json::array({item(kTpId, kTpLabel)});
    strategy[0]["required"] = true;
    for (const ToggleRow& toggle : kToggles) {
        if (toggle.option == "strategy") {
            strategy.push_back(item(toggle.item, toggle.label));
        }
    }
    Json on_off = Json::array({item("disabled", "Disabled"), item("enabled", "Enabled")});
    auto option = [](std::string_view name, std::string_view title, std::string_view type,
                     Json items) {
        return Json{{"name", name}, {"title", title}, {"type", type}, {"items", std::move(items)}};
    };
    return Json::array({
        option("hardware", "Hardware Platform", "radio", std::move(hardware)),
        option("modelname", "Model Name", "radio", std::move(models)),
        option("strategy", "Deployment Strategy", "checkbox", std::move(strategy)),
        option("reasoningParser", "Reasoning Parser", "radio", on_off),
        option("toolcall", "Tool Call Parser", "radio", on_off),
    });
}

// Why a choice cannot be turned on in a hardware/model state ("<option> <item>" -> reason).
Json unavailable_json(Hardware hardware, const ModelRow& model) {
    Json out = Json::object();
    for (const ModelRow& other : kModels) {
        if ((other.runs_on & bit(hardware)) == 0) {
            out[str_cat("modelname ", other.id)] = other.unavailable;
        }
    }
    out["strategy tp"] = "TP is always on";
    for (const ToggleRow& toggle : kToggles) {
        std::string key = str_cat(toggle.option, " ", toggle.item);
        if (!model.fixed_flags.empty()) {
            out[key] = str_cat(model.label, " uses a fixed configuration");
        } else if (toggle.field == &Options::tool_call_parser && model.tool_parser.empty()) {
            out[key] = str_cat(model.label, " doesn't support tool calling");
        }
    }
    return out;
}

}  // namespace

Json table_json() {
    Json defaults = {{"hardware", hardware_id(kHardware[0].hardware)},
                     {"modelname", model_id(kHardware[0].default_model)},
                     {"strategy", Json::array({kTpId})},
                     {"reasoningParser", "disabled"},
                     {"toolcall", "disabled"}};
    Json default_models = Json::object();
    Json unavailable = Json::object();
    for (const HardwareRow& hw : kHardware) {
        default_models[hw.id] = model_id(hw.default_model);
        for (const ModelRow& model : kModels) {
            unavailable[str_cat(hw.id, " ", model.id)] = unavailable_json(hw.hardware, model);
        }
    }
    // Many combinations share a text (every impossible NVFP4 choice, say), so texts are stored
    // once and combinations point at them.
    Json texts = Json::array();
    Json recipes = Json::object();
    std::map<std::string, size_t> index;
    for (const Options& options : all_combinations()) {
        std::string text = make_recipe(options).text();
        auto [it, inserted] = index.emplace(text, texts.size());
        if (inserted) {
            texts.push_back(text);
        }
        recipes[combination_key(options)] = it->second;
    }
    return Json{{"options", options_json()},       {"defaults", std::move(defaults)},
                {"default_model", default_models}, {"unavailable", std::move(unavailable)},
                {"texts", std::move(texts)},       {"recipes", std::move(recipes)}};
}

}  // namespace dsserve::recipe
