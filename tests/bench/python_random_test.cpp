#include "bench/python_random.h"

#include <gtest/gtest.h>

#include <numeric>

#include "core/file.h"
#include "core/json.h"

namespace dsserve::bench {
namespace {

// Values drawn by CPython itself (tools/gen_bench_goldens.py).
Json goldens() {
    return Json::parse(read_file(DSSERVE_GOLDEN_DIR "/bench/python_random.json"));
}

TEST(PythonRandom, GetrandbitsMatchesCPython) {
    const Json g = goldens();
    ASSERT_FALSE(g["getrandbits"].empty());
    for (const Json& c : g["getrandbits"]) {
        PythonRandom rng(c["seed"].get<std::uint64_t>());
        std::vector<std::uint32_t> got;
        for (std::size_t i = 0; i < c["values"].size(); ++i) {
            got.push_back(rng.getrandbits(c["k"].get<int>()));
        }
        EXPECT_EQ(Json(got), c["values"]) << "seed " << c["seed"];
    }
}

TEST(PythonRandom, ShuffleMatchesCPython) {
    const Json g = goldens();
    ASSERT_FALSE(g["shuffle"].empty());
    for (const Json& c : g["shuffle"]) {
        PythonRandom rng(c["seed"].get<std::uint64_t>());
        std::vector<int> order(c["n"].get<std::size_t>());
        std::iota(order.begin(), order.end(), 0);
        rng.shuffle(order);
        EXPECT_EQ(Json(order), c["order"]) << "seed " << c["seed"] << " n " << c["n"];
    }
}

}  // namespace
}  // namespace dsserve::bench
