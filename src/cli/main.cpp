#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "core/error.h"

int main(int argc, char** argv) {
    CLI::App app{"dsserve: a serving engine for the DeepSeek-V3.2 model family"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "dsserve 0.1.0");

    dsserve::cli::add_serve_command(app);
    dsserve::cli::add_generate_command(app);
    dsserve::cli::add_forward_command(app);
    dsserve::cli::add_make_model_command(app);
    dsserve::cli::add_chat_encode_command(app);
    dsserve::cli::add_parse_command(app);
    dsserve::cli::add_tokenize_command(app);
    dsserve::cli::add_recipe_command(app);
    dsserve::cli::add_bench_command(app);
    dsserve::cli::add_eval_command(app);

    // SGLang's argparse accepts any unique prefix of a long flag (--tp, --mem-frac); so do we.
    std::vector<std::string> args(argv + 1, argv + argc);
    dsserve::cli::expand_abbreviations(app, args);
    std::reverse(args.begin(), args.end());
    try {
        app.parse(args);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    } catch (const dsserve::Error& e) {
        std::fprintf(stderr, "dsserve: error: %s\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "dsserve: error: %s\n", e.what());
        return 1;
    }
    return 0;
}
