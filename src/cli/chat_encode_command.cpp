// dsserve chat-encode: prints the prompt text a chat request becomes, exactly (no newline added).
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>

#include "chat/chat_request.h"
#include "chat/chat_template.h"
#include "cli/commands.h"
#include "core/error.h"
#include "core/file.h"
#include "core/json.h"

namespace dsserve::cli {

void add_chat_encode_command(CLI::App& app) {
    struct Options {
        std::string model_path;
        std::string request_path;
        std::string chat_template;
    };
    auto options = std::make_shared<Options>();
    CLI::App* cmd = app.add_subcommand(
        "chat-encode",
        "Print the prompt text for an OpenAI chat request (V3.2 encoder or a Jinja template)");
    cmd->add_option("--model-path", options->model_path, "Model folder with tokenizer_config.json")
        ->required();
    cmd->add_option("--request", options->request_path, "Chat-completions request body (JSON)")
        ->required();
    cmd->add_option("--chat-template", options->chat_template,
                    "Jinja chat template file; overrides the tokenizer's");
    cmd->callback([options] {
        std::optional<std::filesystem::path> template_path;
        if (!options->chat_template.empty()) {
            template_path = options->chat_template;
        }
        const auto builder =
            chat::ChatPromptBuilder::from_model_dir(options->model_path, template_path);
        const Json body = Json::parse(read_file(options->request_path), nullptr, false);
        DS_CHECK(!body.is_discarded(), options->request_path, " is not valid JSON");
        const std::string prompt = builder.build(chat::parse_chat_request(body));
        std::fwrite(prompt.data(), 1, prompt.size(), stdout);
        std::fflush(stdout);
    });
}

}  // namespace dsserve::cli
