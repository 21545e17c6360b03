#include "core/error.h"

#include <gtest/gtest.h>

namespace dsserve {
namespace {

TEST(ErrorTest, CheckThrowsWithMessage) {
    try {
        DS_CHECK(1 + 1 == 3, "arithmetic ", 42, " failed");
        FAIL() << "DS_CHECK did not throw";
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "arithmetic 42 failed");
    }
}

TEST(ErrorTest, CheckPassesSilently) {
    EXPECT_NO_THROW(DS_CHECK(true, "never"));
}

TEST(ErrorDeathTest, AssertAbortsWithLocation) {
    EXPECT_DEATH(DS_ASSERT(false, "value=", 7), "error_test.cpp:.*false: value=7");
}

}  // namespace
}  // namespace dsserve
