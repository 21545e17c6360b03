// `dsserve recipe`: prints the `dsserve serve` command for a deployment, as the DeepSeek-V3.2
// cookbook's command generator builds it (src/recipe). An impossible combination prints the
// guide's error block on stderr and exits 1; the web page shows the same text.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "core/error.h"
#include "recipe/recipe.h"

namespace dsserve::cli {
namespace {

struct RecipeArgs {
    std::string hardware = "h200";
    std::string model;
    std::vector<std::string> strategies;
    bool reasoning_parser = false;
    bool tool_call_parser = false;
    bool dump_json = false;
};

void run_recipe(const RecipeArgs& args) {
    if (args.dump_json) {
        std::printf("%s\n", recipe::table_json().dump(2).c_str());
        return;
    }
    recipe::Options options;
    options.hardware = *recipe::parse_hardware(args.hardware);  // checked by CLI11
    if (!args.model.empty()) {
        options.model = recipe::parse_model(args.model);
    }
    for (const std::string& list : args.strategies) {
        recipe::apply_strategies(options, list);
    }
    options.reasoning_parser = args.reasoning_parser;
    options.tool_call_parser = args.tool_call_parser;

    recipe::Recipe result = recipe::make_recipe(options);
    if (!result.ok()) {
        std::fprintf(stderr, "%s\n", result.text().c_str());
        throw CLI::RuntimeError(1);  // exit status 1, message already printed
    }
    std::printf("%s\n", result.text().c_str());
}

}  // namespace

void add_recipe_command(CLI::App& app) {
    auto args = std::make_shared<RecipeArgs>();
    CLI::App* cmd = app.add_subcommand(
        "recipe", "Print the `dsserve serve` command for a DeepSeek-V3.2 deployment");
    std::vector<std::string> hardware_ids;
    for (recipe::Hardware hardware : recipe::all_hardware()) {
        hardware_ids.emplace_back(recipe::hardware_id(hardware));
    }
    std::vector<std::string> model_ids;
    for (recipe::Model model : recipe::all_models()) {
        model_ids.emplace_back(recipe::model_id(model));
    }
    cmd->add_option("--hardware", args->hardware, "GPU platform")
        ->check(CLI::IsMember(hardware_ids))
        ->capture_default_str();
    cmd->add_option("--model", args->model,
                    "Model variant (default: v32nvfp4 on b200, v32mxfp4 on AMD, else v32)")
        ->check(CLI::IsMember(model_ids));
    cmd->add_option("--strategy", args->strategies,
                    "Comma-separated deployment strategies: tp (always on), dp, ep, mtp")
        ->delimiter(',');
    cmd->add_flag("--reasoning-parser", args->reasoning_parser,
                  "Separate thinking with the deepseek-v3 reasoning parser");
    cmd->add_flag("--tool-call-parser", args->tool_call_parser, "Enable tool calling");
    cmd->add_flag("--dump-json", args->dump_json,
                  "Print every option and the text of every combination as JSON");
    cmd->callback([args] { run_recipe(*args); });
}

}  // namespace dsserve::cli
