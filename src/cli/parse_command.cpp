// `dsserve parse`: runs the output parsers over a completion file and prints the OpenAI message
// fields, either in one pass (the server's non-streaming path) or in N-byte chunks through the
// streaming path, assembled the way a client rebuilds a streamed message.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "core/error.h"
#include "core/file.h"
#include "core/json.h"
#include "parsers/output_parser.h"

namespace dsserve::cli {
namespace {

struct ParseArgs {
    std::string reasoning_parser = "none";
    std::string tool_parser = "none";
    bool thinking = false;
    size_t chunk = 0;
    std::string tools_file;
    std::string file;
    std::string model;
};

// Function names from an OpenAI `tools` array (or an object holding one under "tools").
std::vector<std::string> tool_names(const std::string& path) {
    Json json = Json::parse(read_file(path), nullptr, /*allow_exceptions=*/false);
    DS_CHECK(!json.is_discarded(), path, ": not valid JSON");
    if (json.is_object() && json.contains("tools")) {
        json = json["tools"];
    }
    DS_CHECK(json.is_array(), path, ": expected a tools array");
    std::vector<std::string> names;
    for (const Json& tool : json) {
        const Json* function = tool.contains("function") ? &tool["function"] : &tool;
        DS_CHECK(
            function->is_object() && function->contains("name") && (*function)["name"].is_string(),
            path, ": tool without a function name");
        names.push_back((*function)["name"].get<std::string>());
    }
    return names;
}

void run_parse(const ParseArgs& args) {
    parsers::check_tool_parser_allowed(args.model, args.tool_parser);
    parsers::OutputParserOptions options;
    options.reasoning_parser = args.reasoning_parser;
    options.tool_parser = args.tool_parser;
    options.thinking = args.thinking;
    if (!args.tools_file.empty()) {
        options.tool_names = tool_names(args.tools_file);
    }
    std::string text = read_file(args.file);

    parsers::ParsedMessage message;
    if (args.chunk == 0) {
        message = parsers::OutputParser::parse(text, options);
    } else {
        parsers::OutputParser parser(options);
        parsers::StreamAssembler assembler;
        for (size_t pos = 0; pos < text.size(); pos += args.chunk) {
            assembler.add(parser.push(std::string_view(text).substr(pos, args.chunk)));
        }
        assembler.add(parser.finish());
        message = assembler.message();
    }
    std::string out = parsers::message_to_json(message).dump(2, ' ', /*ensure_ascii=*/false,
                                                             Json::error_handler_t::replace);
    std::printf("%s\n", out.c_str());
}

}  // namespace

void add_parse_command(CLI::App& app) {
    auto args = std::make_shared<ParseArgs>();
    CLI::App* cmd = app.add_subcommand(
        "parse", "Split a completion into content, reasoning_content and tool_calls");
    cmd->add_option("--reasoning-parser", args->reasoning_parser, "deepseek-v3 or none")
        ->capture_default_str();
    cmd->add_option("--tool-call-parser", args->tool_parser, "deepseekv32, deepseekv31 or none")
        ->capture_default_str();
    cmd->add_flag("--thinking", args->thinking,
                  "the prompt ended with <think> (chat_template_kwargs.thinking)");
    cmd->add_option("--chunk", args->chunk,
                    "stream the text in chunks of this many bytes (0: one non-streaming pass)")
        ->capture_default_str();
    cmd->add_option("--tools", args->tools_file,
                    "JSON file with the request's tools; calls to other functions are dropped")
        ->check(CLI::ExistingFile);
    cmd->add_option("--model", args->model,
                    "served model name; tool parsing is refused for DeepSeek-V3.2-Speciale");
    cmd->add_option("--file", args->file, "completion text")->required()->check(CLI::ExistingFile);
    cmd->callback([args] { run_parse(*args); });
}

}  // namespace dsserve::cli
