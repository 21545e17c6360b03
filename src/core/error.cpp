#include "core/error.h"

#include <cstdio>
#include <cstdlib>

namespace dsserve {

void assert_failed(const char* file, int line, const char* condition, const std::string& detail) {
    std::fprintf(stderr, "dsserve: internal error at %s:%d: %s%s%s\n", file, line, condition,
                 detail.empty() ? "" : ": ", detail.c_str());
    std::fflush(stderr);
    std::abort();
}

}  // namespace dsserve
