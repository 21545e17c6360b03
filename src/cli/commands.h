// Each subcommand adds itself to the top-level app; its options and handler live in its own file.
#pragma once

#include <CLI/CLI.hpp>

namespace dsserve::cli {

// dsserve parse: output parsers over a completion file (parse_command.cpp).
void add_parse_command(CLI::App& app);

}  // namespace dsserve::cli
