// Element types of checkpoint tensors and the scalar conversions between them and float.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace dsserve {

enum class DType { kF32, kF16, kBF16, kF8E4M3, kF8E8M0, kI64, kI32, kI8, kU8 };

std::size_t dtype_size(DType dtype);
// The safetensors spelling ("BF16", "F8_E4M3", ...).
std::string_view dtype_name(DType dtype);
std::optional<DType> parse_dtype(std::string_view name);

inline float bf16_to_float(std::uint16_t bits) {
    std::uint32_t u = static_cast<std::uint32_t>(bits) << 16;
    float f;
    __builtin_memcpy(&f, &u, sizeof(f));
    return f;
}

// Round to nearest even, as torch does when casting float32 to bfloat16; NaN stays NaN.
inline std::uint16_t float_to_bf16(float f) {
    std::uint32_t u;
    __builtin_memcpy(&u, &f, sizeof(u));
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        return static_cast<std::uint16_t>((u >> 16) | 0x40u);
    }
    u += 0x7fffu + ((u >> 16) & 1u);
    return static_cast<std::uint16_t>(u >> 16);
}

float f16_to_float(std::uint16_t bits);
std::uint16_t float_to_f16(float f);

// OCP FP8 E4M3 ("e4m3fn"): no infinities, 0x7f/0xff are NaN, largest finite 448.
float fp8_e4m3_to_float(std::uint8_t bits);
// Round to nearest even and saturate to ±448, as DeepSeek's quantizer does (it clamps before
// casting).
std::uint8_t float_to_fp8_e4m3(float f);

// UE8M0: an unsigned power-of-two exponent, value 2^(bits - 127); 0xff is NaN.
float e8m0_to_float(std::uint8_t bits);

}  // namespace dsserve
