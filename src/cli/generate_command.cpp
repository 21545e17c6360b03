#include <cstdio>
#include <memory>
#include <optional>

#include "cli/commands.h"
#include "cli/model_options.h"
#include "core/error.h"
#include "core/json.h"
#include "tokenizer/tokenizer.h"

namespace dsserve::cli {

void add_generate_command(CLI::App& app) {
    struct Args {
        ModelFlags model;
        std::string input_ids;
        std::string prompt;
        runtime::GenerateOptions gen;
        bool json = false;
    };
    auto args = std::make_shared<Args>();
    auto* cmd = app.add_subcommand("generate", "Generate a continuation of a prompt");
    args->model.add_to(cmd);
    auto* ids_opt =
        cmd->add_option("--input-ids", args->input_ids, "Comma-separated prompt token ids");
    auto* prompt_opt =
        cmd->add_option("--prompt", args->prompt,
                        "Prompt text, tokenized with the model's tokenizer; prints the text");
    ids_opt->excludes(prompt_opt);
    cmd->add_option("--max-new-tokens", args->gen.max_new_tokens)->capture_default_str();
    cmd->add_option("--temperature", args->gen.sampling.temperature, "0 = greedy")
        ->capture_default_str();
    cmd->add_option("--top-p", args->gen.sampling.top_p)->capture_default_str();
    cmd->add_option("--top-k", args->gen.sampling.top_k, "-1 = all")->capture_default_str();
    cmd->add_option("--seed", args->gen.seed, "Sampling seed")->capture_default_str();
    cmd->add_flag("--ignore-eos", args->gen.ignore_eos, "Keep generating past EOS");
    cmd->callback([args] {
        auto& s = args->gen.sampling;
        DS_CHECK(std::isfinite(s.temperature) && s.temperature >= 0.0f,
                 "--temperature must be a non-negative finite number");
        DS_CHECK(s.top_p > 0.0f && s.top_p <= 1.0f, "--top-p must be in (0, 1]");
        DS_CHECK(s.top_k == -1 || s.top_k >= 1, "--top-k must be -1 or at least 1");
        DS_CHECK(args->gen.max_new_tokens >= 0, "--max-new-tokens must not be negative");
        DS_CHECK(!args->input_ids.empty() || !args->prompt.empty(), "give --prompt or --input-ids");
        auto options = args->model.resolve();
        std::optional<tokenizer::Tokenizer> tok;
        std::vector<std::int32_t> ids;
        if (!args->prompt.empty()) {
            tok = tokenizer::Tokenizer::load(options.model_path);
            ids = tok->encode(args->prompt, true);
        } else {
            ids = parse_id_list(args->input_ids, "--input-ids");
        }
        runtime::LoadedModel loaded(options);
        std::vector<std::int32_t> out;
        if (args->gen.max_new_tokens > 0) {
            out = runtime::generate(loaded.model(), ids, args->gen);
        }
        if (tok) {
            std::printf("%s\n", tok->decode(out, true).c_str());
        } else {
            std::printf("%s\n", Json(out).dump().c_str());
        }
    });
}

}  // namespace dsserve::cli
