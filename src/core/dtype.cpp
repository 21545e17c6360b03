#include "core/dtype.h"

#include <cmath>
#include <cstring>
#include <limits>

namespace dsserve {

std::size_t dtype_size(DType dtype) {
    switch (dtype) {
        case DType::kF32:
        case DType::kI32:
            return 4;
        case DType::kF16:
        case DType::kBF16:
            return 2;
        case DType::kF8E4M3:
        case DType::kF8E8M0:
        case DType::kI8:
        case DType::kU8:
            return 1;
        case DType::kI64:
            return 8;
    }
    return 0;
}

std::string_view dtype_name(DType dtype) {
    switch (dtype) {
        case DType::kF32:
            return "F32";
        case DType::kF16:
            return "F16";
        case DType::kBF16:
            return "BF16";
        case DType::kF8E4M3:
            return "F8_E4M3";
        case DType::kF8E8M0:
            return "F8_E8M0";
        case DType::kI64:
            return "I64";
        case DType::kI32:
            return "I32";
        case DType::kI8:
            return "I8";
        case DType::kU8:
            return "U8";
    }
    return "?";
}

std::optional<DType> parse_dtype(std::string_view name) {
    for (DType d : {DType::kF32, DType::kF16, DType::kBF16, DType::kF8E4M3, DType::kF8E8M0,
                    DType::kI64, DType::kI32, DType::kI8, DType::kU8}) {
        if (dtype_name(d) == name) {
            return d;
        }
    }
    return std::nullopt;
}

float f16_to_float(std::uint16_t bits) {
    std::uint32_t sign = (bits >> 15) & 1u;
    std::uint32_t exp = (bits >> 10) & 0x1fu;
    std::uint32_t mant = bits & 0x3ffu;
    float value;
    if (exp == 0) {
        value = std::ldexp(static_cast<float>(mant), -24);
    } else if (exp == 31) {
        value =
            mant ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
    } else {
        value = std::ldexp(static_cast<float>(mant | 0x400u), static_cast<int>(exp) - 25);
    }
    return sign ? -value : value;
}

std::uint16_t float_to_f16(float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, sizeof(u));
    std::uint16_t sign = static_cast<std::uint16_t>((u >> 16) & 0x8000u);
    float a = std::fabs(f);
    if (std::isnan(f)) {
        return static_cast<std::uint16_t>(sign | 0x7e00u);
    }
    if (a >= 65520.0f) {
        return static_cast<std::uint16_t>(sign | 0x7c00u);
    }
    if (a < 6.103515625e-05f) {  // subnormal: units of 2^-24, round half to even
        float q = std::nearbyint(a * 16777216.0f);
        return static_cast<std::uint16_t>(sign | static_cast<std::uint16_t>(q));
    }
    int e;
    float m = std::frexp(a, &e);                 // a = m * 2^e, m in [0.5, 1)
    float scaled = std::nearbyint(m * 2048.0f);  // 11 significant bits
    if (scaled >= 2048.0f) {
        scaled /= 2.0f;
        e += 1;
    }
    std::uint32_t exp = static_cast<std::uint32_t>(e + 14);
    if (exp >= 31) {
        return static_cast<std::uint16_t>(sign | 0x7c00u);
    }
    std::uint32_t mant = static_cast<std::uint32_t>(scaled) - 1024u;
    return static_cast<std::uint16_t>(sign | (exp << 10) | mant);
}

float fp8_e4m3_to_float(std::uint8_t bits) {
    std::uint32_t sign = bits >> 7;
    std::uint32_t exp = (bits >> 3) & 0xfu;
    std::uint32_t mant = bits & 0x7u;
    float value;
    if (exp == 15 && mant == 7) {
        return std::numeric_limits<float>::quiet_NaN();
    }
    if (exp == 0) {
        value = std::ldexp(static_cast<float>(mant), -9);
    } else {
        value = std::ldexp(static_cast<float>(mant | 8u), static_cast<int>(exp) - 10);
    }
    return sign ? -value : value;
}

std::uint8_t float_to_fp8_e4m3(float f) {
    if (std::isnan(f)) {
        return 0x7f;
    }
    std::uint8_t sign = std::signbit(f) ? 0x80 : 0x00;
    float a = std::fmin(std::fabs(f), 448.0f);
    if (a < 0.015625f) {  // below the smallest normal 2^-6: subnormal steps of 2^-9
        float q = std::nearbyint(a * 512.0f);
        return static_cast<std::uint8_t>(sign | static_cast<std::uint8_t>(q));
    }
    int e;
    float m = std::frexp(a, &e);               // a = m * 2^e, m in [0.5, 1)
    float scaled = std::nearbyint(m * 16.0f);  // 4 significant bits
    if (scaled >= 16.0f) {
        scaled /= 2.0f;
        e += 1;
    }
    int exp = e + 6;  // bias 7, and m*2^e = 1.mmm * 2^(e-1)
    std::uint8_t mant = static_cast<std::uint8_t>(static_cast<int>(scaled) - 8);
    if (exp > 15 || (exp == 15 && mant == 7)) {
        return static_cast<std::uint8_t>(sign | 0x7e);  // 448, the largest finite value
    }
    return static_cast<std::uint8_t>(sign | (exp << 3) | mant);
}

float e8m0_to_float(std::uint8_t bits) {
    if (bits == 0xff) {
        return std::numeric_limits<float>::quiet_NaN();
    }
    return std::ldexp(1.0f, static_cast<int>(bits) - 127);
}

}  // namespace dsserve
