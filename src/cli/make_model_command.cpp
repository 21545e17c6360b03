#include <memory>

#include "cli/commands.h"
#include "core/assets.h"
#include "core/error.h"
#include "core/file.h"
#include "model/config.h"
#include "model/make_model.h"
#include "tokenizer/tokenizer.h"

namespace dsserve::cli {

void add_make_model_command(CLI::App& app) {
    struct Args {
        std::string output;
        std::string preset = "tiny";
        std::string config_file;
        int layers = 0;
        std::uint64_t seed = 0;
        std::string dtype = "fp8";
        std::string scale_dtype = "f32";
        std::string overrides;
        std::uint64_t shard_mb = 64;
        std::string force_output;
    };
    auto args = std::make_shared<Args>();
    auto* cmd = app.add_subcommand(
        "make-model", "Write a Hugging-Face-layout DeepSeek-V3.2 checkpoint with random weights");
    cmd->add_option("output", args->output, "Output directory")->required();
    cmd->add_option("--preset", args->preset, "tiny, small or full")->capture_default_str();
    cmd->add_option("--config", args->config_file, "Any valid config.json instead of a preset");
    cmd->add_option("--layers", args->layers, "Decoder layers (with --preset full: official dims)");
    cmd->add_option("--seed", args->seed, "Weight seed")->capture_default_str();
    cmd->add_option("--dtype", args->dtype, "fp8 (block-quantized, like the release) or bf16")
        ->capture_default_str();
    cmd->add_option("--scale-dtype", args->scale_dtype,
                    "FP8 block scale tensors: f32 (as released) or e8m0")
        ->capture_default_str();
    cmd->add_option("--json-model-override-args", args->overrides,
                    "JSON object of config overrides");
    cmd->add_option("--max-shard-size-mb", args->shard_mb, "Shard size limit")
        ->capture_default_str();
    cmd->add_option("--force-output", args->force_output,
                    "Make greedy decoding emit exactly this text (then EOS) after any prompt; for "
                    "end-to-end tests with known model output");
    cmd->callback([args] {
        model::MakeModelOptions o;
        o.output = args->output;
        if (!args->config_file.empty()) {
            o.config = Json::parse(read_file(args->config_file), nullptr, false);
            DS_CHECK(!o.config.is_discarded(), args->config_file, ": not valid JSON");
            if (args->layers > 0) {
                o.config["num_hidden_layers"] = args->layers;
            }
        } else {
            o.config = model::preset_config(args->preset, args->layers);
        }
        o.config = model::apply_overrides(o.config, args->overrides);
        o.seed = args->seed;
        DS_CHECK(args->dtype == "fp8" || args->dtype == "bf16", "--dtype must be fp8 or bf16");
        o.dtype =
            args->dtype == "fp8" ? model::CheckpointDType::kFp8 : model::CheckpointDType::kBf16;
        DS_CHECK(args->scale_dtype == "f32" || args->scale_dtype == "e8m0",
                 "--scale-dtype must be f32 or e8m0");
        o.scale_dtype =
            args->scale_dtype == "f32" ? model::ScaleDType::kF32 : model::ScaleDType::kE8M0;
        DS_CHECK(args->shard_mb > 0, "--max-shard-size-mb must be positive");
        o.max_shard_bytes = args->shard_mb << 20;
        if (!args->force_output.empty()) {
            auto tok = tokenizer::Tokenizer::from_json(assets::tokenizer_json(),
                                                       assets::tokenizer_config_json());
            o.forced_output = tok.encode(args->force_output, false);
        }
        model::make_model(o);
    });
}

}  // namespace dsserve::cli
