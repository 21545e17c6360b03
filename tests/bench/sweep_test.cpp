#include "bench/sweep.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "core/error.h"
#include "core/file.h"

namespace dsserve::bench {
namespace {

TEST(Sweep, ConcurrencyList) {
    EXPECT_EQ(parse_concurrency_list("1,2,4,16"), (std::vector<std::int64_t>{1, 2, 4, 16}));
    EXPECT_EQ(parse_concurrency_list("8"), (std::vector<std::int64_t>{8}));
    EXPECT_THROW(parse_concurrency_list("1,,2"), Error);
    EXPECT_THROW(parse_concurrency_list("0"), Error);
    EXPECT_THROW(parse_concurrency_list("a"), Error);
}

TEST(Sweep, CsvAndPlot) {
    std::vector<SweepPoint> points;
    for (std::int64_t c : {1, 2, 4}) {
        SweepPoint p;
        p.concurrency = c;
        p.metrics.completed = 10;
        p.metrics.output_throughput = 100.0 * static_cast<double>(c);
        p.metrics.total_throughput = 150.0 * static_cast<double>(c);
        p.metrics.ttft_ms.median = 10.0 * static_cast<double>(c);
        p.metrics.ttft_ms.p99 = 20.0 * static_cast<double>(c);
        p.metrics.tpot_ms.median = 5.0;
        p.metrics.tpot_ms.p99 = 6.0;
        points.push_back(p);
    }
    const std::string csv = sweep_csv(points);
    EXPECT_EQ(csv.substr(0, csv.find('\n')).find("concurrency,completed,failed"), 0u);
    EXPECT_NE(csv.find("\n4,10,0,"), std::string::npos);
    const auto dir = std::filesystem::temp_directory_path() / ("sweep_" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    write_file(dir / "s.csv", csv);
    const std::string why = plot_sweep(dir / "s.csv", dir / "s.png", "test");
    if (!why.empty()) {
        GTEST_SKIP() << "no plot on this machine: " << why;
    }
    const std::string png = read_file(dir / "s.png");
    ASSERT_GT(png.size(), 1000u);
    EXPECT_EQ(png.substr(1, 3), "PNG");
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace dsserve::bench
