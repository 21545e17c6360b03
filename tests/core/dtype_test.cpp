#include "core/dtype.h"

#include <gtest/gtest.h>

#include <cmath>

namespace dsserve {
namespace {

TEST(DTypeTest, Fp8E4M3KnownEncodings) {
    // Values from the OCP FP8 spec: bias 7, 3 mantissa bits, 0x7e = 448, 0x08 = 2^-6.
    EXPECT_EQ(fp8_e4m3_to_float(0x00), 0.0f);
    EXPECT_EQ(fp8_e4m3_to_float(0x38), 1.0f);
    EXPECT_EQ(fp8_e4m3_to_float(0x7e), 448.0f);
    EXPECT_EQ(fp8_e4m3_to_float(0xfe), -448.0f);
    EXPECT_EQ(fp8_e4m3_to_float(0x08), 0.015625f);
    EXPECT_EQ(fp8_e4m3_to_float(0x01), 0.001953125f);  // smallest subnormal 2^-9
    EXPECT_EQ(fp8_e4m3_to_float(0x3c), 1.5f);
    EXPECT_TRUE(std::isnan(fp8_e4m3_to_float(0x7f)));
    EXPECT_EQ(float_to_fp8_e4m3(1.0f), 0x38);
    EXPECT_EQ(float_to_fp8_e4m3(-1.5f), 0xbc);
    EXPECT_EQ(float_to_fp8_e4m3(1000.0f), 0x7e);  // saturates
    EXPECT_EQ(float_to_fp8_e4m3(1.0625f), 0x38);  // halfway between 1 and 1.125: to even
    EXPECT_EQ(float_to_fp8_e4m3(1.1875f), 0x3a);  // halfway between 1.125 and 1.25: to even
}

TEST(DTypeTest, Fp8RoundTripsEveryFiniteCode) {
    for (int b = 0; b < 256; ++b) {
        float f = fp8_e4m3_to_float(static_cast<std::uint8_t>(b));
        if (std::isnan(f) || b == 0x80) {
            continue;  // NaN, and -0 which encodes as itself only by sign
        }
        EXPECT_EQ(float_to_fp8_e4m3(f), b) << "code " << b << " value " << f;
    }
}

TEST(DTypeTest, Bf16RoundsToNearestEven) {
    EXPECT_EQ(float_to_bf16(1.0f), 0x3f80);
    EXPECT_EQ(bf16_to_float(0x3f80), 1.0f);
    // 1 + 2^-8 is halfway between bf16 neighbours 1 and 1 + 2^-7: ties to even (1).
    EXPECT_EQ(float_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);
    EXPECT_EQ(float_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
}

TEST(DTypeTest, F16AndE8M0) {
    EXPECT_EQ(f16_to_float(0x3c00), 1.0f);
    EXPECT_EQ(f16_to_float(0xc000), -2.0f);
    EXPECT_EQ(f16_to_float(0x0001), std::ldexp(1.0f, -24));
    EXPECT_EQ(float_to_f16(65504.0f), 0x7bff);
    EXPECT_EQ(float_to_f16(1.0f), 0x3c00);
    EXPECT_EQ(e8m0_to_float(127), 1.0f);
    EXPECT_EQ(e8m0_to_float(120), std::ldexp(1.0f, -7));
    EXPECT_TRUE(std::isnan(e8m0_to_float(0xff)));
}

TEST(DTypeTest, NamesRoundTrip) {
    for (DType d : {DType::kF32, DType::kF16, DType::kBF16, DType::kF8E4M3, DType::kF8E8M0}) {
        EXPECT_EQ(parse_dtype(dtype_name(d)), d);
    }
    EXPECT_FALSE(parse_dtype("F4").has_value());
}

}  // namespace
}  // namespace dsserve
