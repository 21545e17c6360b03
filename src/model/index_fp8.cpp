#include "model/index_fp8.h"

#include <cmath>

#include "core/dtype.h"
#include "core/error.h"

namespace dsserve::model {

bool fp8_index_supported(int head_dim) {
    return head_dim >= 32 && head_dim <= 128 && (head_dim & (head_dim - 1)) == 0;
}

float hadamard_norm(int n) {
    return 1.0f / std::sqrt(static_cast<float>(n));
}

void hadamard_rotate(std::span<float> row) {
    const auto n = row.size();
    DS_ASSERT(n > 0 && (n & (n - 1)) == 0, "a Hadamard rotation of ", n, " values");
    for (std::size_t h = 1; h < n; h *= 2) {
        for (std::size_t i = 0; i < n; i += 2 * h) {
            for (std::size_t j = i; j < i + h; ++j) {
                const float a = row[j], b = row[j + h];
                row[j] = a + b;
                row[j + h] = a - b;
            }
        }
    }
    const float norm = hadamard_norm(static_cast<int>(n));
    for (float& v : row) {
        v *= norm;
    }
}

float e4m3_row_scale(std::span<const float> row) {
    float amax = 1e-4f;
    for (float v : row) {
        amax = std::fmax(amax, std::fabs(v));
    }
    int e = 0;
    const float m = std::frexp(amax / 448.0f, &e);  // amax / 448 = m 2^e, m in [0.5, 1)
    return std::ldexp(1.0f, m == 0.5f ? e - 1 : e);
}

float quantize_e4m3_row(std::span<float> row) {
    const float s = e4m3_row_scale(row);
    for (float& v : row) {
        v = fp8_e4m3_to_float(float_to_fp8_e4m3(v / s)) * s;
    }
    return s;
}

void rotate_and_quantize_rows(std::span<float> values, int width) {
    const auto w = static_cast<std::size_t>(width);
    DS_ASSERT(width > 0 && values.size() % w == 0, values.size(), " values in rows of ", width);
    for (std::size_t at = 0; at < values.size(); at += w) {
        hadamard_rotate(values.subspan(at, w));
        quantize_e4m3_row(values.subspan(at, w));
    }
}

}  // namespace dsserve::model
