// Each subcommand adds itself to the top-level app; its options and handler live in its own file.
#pragma once

#include <CLI/CLI.hpp>

namespace dsserve::cli {


}  // namespace dsserve::cli
