// Each subcommand adds itself to the top-level app; its options and handler live in its own file.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace dsserve::cli {

// Replaces each unique prefix of a subcommand's long flag with the flag itself.
void expand_abbreviations(CLI::App& app, std::vector<std::string>& args);

void add_generate_command(CLI::App& app);
void add_forward_command(CLI::App& app);
void add_make_model_command(CLI::App& app);
void add_chat_encode_command(CLI::App& app);
void add_parse_command(CLI::App& app);
void add_recipe_command(CLI::App& app);
void add_tokenize_command(CLI::App& app);
void add_serve_command(CLI::App& app);

void add_bench_command(CLI::App& app);
void add_eval_command(CLI::App& app);

}  // namespace dsserve::cli
