#include "runtime/kv_pool.h"

#include <gtest/gtest.h>

namespace dsserve::runtime {
namespace {

TEST(KvPoolTest, AllocatesWholePagesOrNothing) {
    KvPool pool(4, 16);
    EXPECT_EQ(pool.num_slots(), 64);
    auto a = pool.allocate(3);
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(pool.free_pages(), 1);
    EXPECT_FALSE(pool.allocate(2).has_value());
    EXPECT_EQ(pool.free_pages(), 1);  // a failed allocation takes nothing
    pool.release(*a);
    EXPECT_EQ(pool.free_pages(), 4);
    EXPECT_EQ(pool.slot(2, 5), 37);
}

TEST(KvPoolDeathTest, DoubleFreeIsAnInvariantViolation) {
    KvPool pool(2, 1);
    auto a = pool.allocate(1);
    pool.release(*a);
    EXPECT_DEATH(pool.release(*a), "double free");
}

}  // namespace
}  // namespace dsserve::runtime
