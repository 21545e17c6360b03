#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/model_options.h"
#include "core/error.h"
#include "core/json.h"

namespace dsserve::cli {

void add_generate_command(CLI::App& app) {
    struct Args {
        ModelFlags model;
        std::string input_ids;
        runtime::GenerateOptions gen;
        bool json = false;
    };
    auto args = std::make_shared<Args>();
    auto* cmd = app.add_subcommand("generate", "Generate a continuation of a prompt");
    args->model.add_to(cmd);
    cmd->add_option("--input-ids", args->input_ids, "Comma-separated prompt token ids")->required();
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
        auto ids = parse_id_list(args->input_ids, "--input-ids");
        runtime::LoadedModel loaded(args->model.resolve());
        std::vector<std::int32_t> out;
        if (args->gen.max_new_tokens > 0) {
            out = runtime::generate(loaded.model(), ids, args->gen);
        }
        std::printf("%s\n", Json(out).dump().c_str());
    });
}

}  // namespace dsserve::cli
