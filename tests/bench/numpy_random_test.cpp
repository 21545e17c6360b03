#include "bench/numpy_random.h"

#include <gtest/gtest.h>

#include "core/file.h"
#include "core/json.h"

namespace dsserve::bench {
namespace {

// Values drawn by numpy itself (tools/gen_bench_goldens.py).
Json goldens() {
    return Json::parse(read_file(DSSERVE_GOLDEN_DIR "/bench/numpy_random.json"));
}

TEST(NumpyRandom, RandintMatchesNumpy) {
    const Json g = goldens();
    ASSERT_FALSE(g["randint"].empty());
    for (const Json& c : g["randint"]) {
        NumpyRandom rng(c["seed"].get<std::uint32_t>());
        const auto got = rng.randint(c["low"], c["high"], c["n"].get<std::size_t>());
        EXPECT_EQ(Json(got), c["values"]) << c["seed"] << " " << c["low"] << " " << c["high"];
    }
}

TEST(NumpyRandom, ExponentialContinuesTheSameStream) {
    const Json c = goldens()["randint_then_exponential"];
    NumpyRandom rng(c["seed"].get<std::uint32_t>());
    EXPECT_EQ(Json(rng.randint(c["randint"][0], c["randint"][1], c["randint"][2])), c["values"]);
    for (const Json& want : c["exponentials"]) {
        EXPECT_DOUBLE_EQ(rng.exponential(c["scale"].get<double>()), want.get<double>());
    }
}

}  // namespace
}  // namespace dsserve::bench
