// Repository paths for the chat tests. DSSERVE_GOLDEN_DIR as tests/CMakeLists.txt defines it
// resolves against the calling test folder (tests/chat/golden), so the golden folder is found
// from the data folder instead: both sit at the repository root.
#pragma once

#include <string>

namespace dsserve::chat::testing {

inline std::string data_dir() {
    return DSSERVE_DATA_DIR;
}
inline std::string golden_dir() {
    return std::string(DSSERVE_DATA_DIR) + "/../tests/golden";
}

}  // namespace dsserve::chat::testing
