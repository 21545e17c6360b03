#pragma once

#include <filesystem>

namespace dsserve::cli {

// Where the benchmark and eval datasets are: $DSSERVE_DATASETS_DIR when set, else the
// repository's data/datasets this binary was built from.
std::filesystem::path datasets_dir();

}  // namespace dsserve::cli
