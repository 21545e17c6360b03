// Python's `random` module generator (random.seed with an int, random.shuffle), reproduced so
// that `--seed S` takes the ShareGPT prompts in the order SGLang's bench_serving takes them after
// random.seed(S): the two tools then send the same prompt text, not only the same lengths.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace dsserve::bench {

class PythonRandom {
public:
    // random.seed(seed): MT19937 init_by_array over the 32-bit words of |seed|, low word first.
    explicit PythonRandom(std::uint64_t seed);

    // random.getrandbits(k) for k in 1..32: the top k bits of one 32-bit draw.
    std::uint32_t getrandbits(int k);

    // random._randbelow(n): getrandbits(n.bit_length()) until the draw is below n.
    std::uint64_t randbelow(std::uint64_t n);

    // random.shuffle(x): Fisher-Yates from the back, j = _randbelow(i + 1).
    template <typename T>
    void shuffle(std::vector<T>& x) {
        for (std::size_t i = x.size(); i-- > 1;) {
            std::swap(x[i], x[static_cast<std::size_t>(randbelow(i + 1))]);
        }
    }

private:
    std::mt19937 mt_;
};

}  // namespace dsserve::bench
