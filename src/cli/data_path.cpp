#include "cli/data_path.h"

#include <cstdlib>

namespace dsserve::cli {

std::filesystem::path datasets_dir() {
    if (const char* env = std::getenv("DSSERVE_DATASETS_DIR"); env != nullptr && *env != '\0') {
        return env;
    }
    return DSSERVE_BUILD_DATASETS_DIR;
}

}  // namespace dsserve::cli
