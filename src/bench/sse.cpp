#include "bench/sse.h"

namespace dsserve::bench {

std::string_view LineSplitter::strip(std::string_view s) {
    // Python's bytes.strip(): space, \t, \n, \r, \v, \f.
    constexpr std::string_view kSpace = " \t\n\r\v\f";
    const std::size_t first = s.find_first_not_of(kSpace);
    if (first == std::string_view::npos) {
        return {};
    }
    const std::size_t last = s.find_last_not_of(kSpace);
    return s.substr(first, last - first + 1);
}

std::string_view sse_payload(std::string_view line) {
    constexpr std::string_view kPrefix = "data: ";
    if (line.substr(0, kPrefix.size()) == kPrefix) {
        line.remove_prefix(kPrefix.size());
    }
    return line;
}

}  // namespace dsserve::bench
