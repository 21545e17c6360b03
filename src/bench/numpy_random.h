// numpy's legacy global generator (np.random.seed / randint / exponential), reproduced so that
// `--seed S` draws the same random-dataset lengths and Poisson gaps as SGLang's bench_serving
// with the same seed: identical token totals make the two tools' tables directly comparable.
// seed(int) is MT19937 init_genrand, which std::mt19937 also uses.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace dsserve::bench {

class NumpyRandom {
public:
    explicit NumpyRandom(std::uint32_t seed) : mt_(seed) {}

    // np.random.randint(low, high, size=n) with int64 results: high exclusive. Masked rejection
    // sampling on 32-bit draws, as numpy's legacy bounded integers do for ranges below 2^32.
    std::vector<std::int64_t> randint(std::int64_t low, std::int64_t high, std::size_t n);

    // np.random.random_sample(): 53-bit double from two 32-bit draws.
    double random_double();

    // np.random.exponential(scale): scale * -log(1 - U).
    double exponential(double scale);

private:
    std::mt19937 mt_;
};

}  // namespace dsserve::bench
