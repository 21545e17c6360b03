#include "model/rope.h"

#include <algorithm>
#include <cmath>

namespace dsserve::model {
namespace {

double yarn_mscale(double scale, double mscale) {
    return scale <= 1.0 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}

// The dimension index at which a frequency completes num_rotations over max_position tokens.
double correction_dim(double num_rotations, int dim, double base, double max_position) {
    return dim * std::log(max_position / (num_rotations * 2.0 * M_PI)) / (2.0 * std::log(base));
}

}  // namespace

RopeTable rope_frequencies(const ModelConfig& c) {
    const int dim = c.qk_rope_head_dim;
    const float base = static_cast<float>(c.rope_theta);
    RopeTable table;
    table.inv_freq.resize(static_cast<std::size_t>(dim / 2));
    // float32 arithmetic, as the reference computes these tensors.
    std::vector<float> pos_freqs(table.inv_freq.size());
    for (int i = 0; i < dim / 2; ++i) {
        pos_freqs[i] = std::pow(base, static_cast<float>(2 * i) / static_cast<float>(dim));
    }
    if (!c.rope_scaling.yarn) {
        for (int i = 0; i < dim / 2; ++i) {
            table.inv_freq[i] = 1.0f / pos_freqs[i];
        }
        return table;
    }
    const auto& y = c.rope_scaling;
    const float factor = static_cast<float>(y.factor);
    double low = std::floor(correction_dim(
        y.beta_fast, dim, c.rope_theta, static_cast<double>(y.original_max_position_embeddings)));
    double high = std::ceil(correction_dim(
        y.beta_slow, dim, c.rope_theta, static_cast<double>(y.original_max_position_embeddings)));
    low = std::max(low, 0.0);
    high = std::min(high, static_cast<double>(dim - 1));
    float lo = static_cast<float>(low), hi = static_cast<float>(high);
    if (lo == hi) {
        hi += 0.001f;
    }
    for (int i = 0; i < dim / 2; ++i) {
        float ramp = std::clamp((static_cast<float>(i) - lo) / (hi - lo), 0.0f, 1.0f);
        float extrapolation = 1.0f - ramp;
        float inv_extra = 1.0f / pos_freqs[i];
        float inv_inter = 1.0f / (factor * pos_freqs[i]);
        table.inv_freq[i] = inv_inter * (1.0f - extrapolation) + inv_extra * extrapolation;
    }
    if (y.mscale != 0.0 && y.mscale_all_dim != 0.0) {
        table.attention_factor = static_cast<float>(yarn_mscale(y.factor, y.mscale) /
                                                    yarn_mscale(y.factor, y.mscale_all_dim));
    } else {
        table.attention_factor = static_cast<float>(yarn_mscale(y.factor, 1.0));
    }
    return table;
}

}  // namespace dsserve::model
