#pragma once

#include <filesystem>
#include <string>

namespace dsserve::cli {

// The model a command runs: the given path, or, when none is given, the embedded tiny model,
// written on first use into the cache folder ($DSSERVE_CACHE_DIR, else $XDG_CACHE_HOME/dsserve,
// else ~/.cache/dsserve).
std::filesystem::path resolve_model_path(const std::string& given);

}  // namespace dsserve::cli
