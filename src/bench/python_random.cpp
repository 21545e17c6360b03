#include "bench/python_random.h"

#include <array>
#include <bit>

#include "core/error.h"

namespace dsserve::bench {

namespace {

// The reference MT19937 init_by_array (Matsumoto and Nishimura, mt19937ar.c), which CPython's
// random_seed calls. std::mt19937 has no such seeding, but its seed(Sseq&) takes the 624 state
// words from any type with generate(), so the reference state is written through that.
struct InitByArray {
    using result_type = std::uint32_t;  // what the engine's seed-sequence check looks for
    std::vector<std::uint32_t> key;

    template <typename It>
    void generate(It first, It last) const {
        constexpr std::size_t kN = 624;
        DS_ASSERT(static_cast<std::size_t>(last - first) == kN, "mt19937 state is 624 words");
        std::array<std::uint32_t, kN> mt{};
        mt[0] = 19650218u;
        for (std::size_t i = 1; i < kN; ++i) {
            mt[i] = 1812433253u * (mt[i - 1] ^ (mt[i - 1] >> 30)) + static_cast<std::uint32_t>(i);
        }
        std::size_t i = 1, j = 0;
        for (std::size_t k = std::max(kN, key.size()); k > 0; --k) {
            mt[i] = (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1664525u)) + key[j] +
                    static_cast<std::uint32_t>(j);
            ++i;
            ++j;
            if (i >= kN) {
                mt[0] = mt[kN - 1];
                i = 1;
            }
            if (j >= key.size()) {
                j = 0;
            }
        }
        for (std::size_t k = kN - 1; k > 0; --k) {
            mt[i] = (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1566083941u)) -
                    static_cast<std::uint32_t>(i);
            ++i;
            if (i >= kN) {
                mt[0] = mt[kN - 1];
                i = 1;
            }
        }
        mt[0] = 0x80000000u;  // a non-zero state whatever the key
        std::copy(mt.begin(), mt.end(), first);
    }
};

InitByArray key_of(std::uint64_t seed) {
    InitByArray init;
    init.key.push_back(static_cast<std::uint32_t>(seed));
    if (seed >> 32 != 0) {
        init.key.push_back(static_cast<std::uint32_t>(seed >> 32));
    }
    return init;
}

}  // namespace

PythonRandom::PythonRandom(std::uint64_t seed) {
    InitByArray init = key_of(seed);
    mt_.seed(init);
}

std::uint32_t PythonRandom::getrandbits(int k) {
    DS_ASSERT(k >= 1 && k <= 32, "getrandbits(", k, ") outside 1..32");
    return static_cast<std::uint32_t>(mt_()) >> (32 - k);
}

std::uint64_t PythonRandom::randbelow(std::uint64_t n) {
    DS_ASSERT(n >= 1 && n <= 0xFFFFFFFFull, "randbelow(", n, ") outside 1..2^32-1");
    const int k = std::bit_width(n);
    std::uint64_t r = getrandbits(k);
    while (r >= n) {
        r = getrandbits(k);
    }
    return r;
}

}  // namespace dsserve::bench
