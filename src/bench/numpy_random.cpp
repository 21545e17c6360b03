#include "bench/numpy_random.h"

#include <cmath>

#include "core/error.h"

namespace dsserve::bench {

std::vector<std::int64_t> NumpyRandom::randint(std::int64_t low, std::int64_t high, std::size_t n) {
    DS_CHECK(high > low, "randint: low (", low, ") >= high (", high, ")");
    const std::uint64_t range = static_cast<std::uint64_t>(high - 1 - low);
    DS_CHECK(range <= 0xFFFFFFFFull, "randint: range too large");
    std::vector<std::int64_t> out(n, low);
    if (range == 0) {
        return out;
    }
    std::uint32_t mask = static_cast<std::uint32_t>(range);
    mask |= mask >> 1;
    mask |= mask >> 2;
    mask |= mask >> 4;
    mask |= mask >> 8;
    mask |= mask >> 16;
    for (auto& v : out) {
        std::uint32_t draw = 0;
        if (range == 0xFFFFFFFFull) {
            draw = static_cast<std::uint32_t>(mt_());
        } else {
            do {
                draw = static_cast<std::uint32_t>(mt_()) & mask;
            } while (draw > range);
        }
        v = low + static_cast<std::int64_t>(draw);
    }
    return out;
}

double NumpyRandom::random_double() {
    const std::uint32_t a = static_cast<std::uint32_t>(mt_()) >> 5;
    const std::uint32_t b = static_cast<std::uint32_t>(mt_()) >> 6;
    return (a * 67108864.0 + b) / 9007199254740992.0;
}

double NumpyRandom::exponential(double scale) {
    return scale * -std::log(1.0 - random_double());
}

}  // namespace dsserve::bench
