// Each subcommand adds itself to the top-level app; its options and handler live in its own file.
#pragma once

#include <CLI/CLI.hpp>

namespace dsserve::cli {

void add_tokenize_command(CLI::App& app);

}  // namespace dsserve::cli
