#include "core/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <vector>

namespace dsserve {
namespace {

TEST(ThreadPoolTest, CoversRangeExactlyOnce) {
    ThreadPool pool(3);
    for (std::size_t n : {0u, 1u, 2u, 7u, 1000u}) {
        std::vector<std::atomic<int>> hits(n);
        pool.parallel_for(n, [&](std::size_t b, std::size_t e) {
            for (std::size_t i = b; i < e; ++i) {
                hits[i]++;
            }
        });
        for (std::size_t i = 0; i < n; ++i) {
            EXPECT_EQ(hits[i].load(), 1) << i;
        }
    }
}

TEST(ThreadPoolTest, RethrowsWorkerExceptions) {
    ThreadPool pool(2);
    EXPECT_THROW(pool.parallel_for(100,
                                   [](std::size_t b, std::size_t) {
                                       if (b > 0) {
                                           throw std::runtime_error("worker");
                                       }
                                   }),
                 std::runtime_error);
    // The pool stays usable.
    std::atomic<int> total{0};
    pool.parallel_for(10, [&](std::size_t b, std::size_t e) { total += static_cast<int>(e - b); });
    EXPECT_EQ(total.load(), 10);
}

}  // namespace
}  // namespace dsserve
