#include "model/ops.h"

#include <algorithm>
#include <array>

#include "core/error.h"
#include "model/index_fp8.h"
#include "model/moe_routing.h"

namespace dsserve::model {

void Ops::store_latent(const Tensor& kv, const Tensor& g, float eps,
                       std::span<const std::int32_t> positions, std::span<const float> inv_freq,
                       float attention_factor, std::span<const std::int32_t> slots,
                       const LayerCacheView& cache) {
    const std::int64_t t = kv.rows();
    const int lora = static_cast<int>(cache.latent->cols()),
              rope_dim = static_cast<int>(cache.rope->cols());
    Tensor latent = empty(t, lora), k_rope = empty(t, rope_dim);
    copy_cols(kv, 0, latent, 0, lora);
    copy_cols(kv, lora, k_rope, 0, rope_dim);
    rms_norm(latent, g, eps, latent);
    rope(k_rope, 1, rope_dim, 0, rope_dim, positions, inv_freq, attention_factor, true);
    scatter_rows(latent, slots, *cache.latent);
    scatter_rows(k_rope, slots, *cache.rope);
}

void Ops::store_index_key(const Tensor& k, const Tensor& g, const Tensor& b, float eps,
                          int rope_dim, std::span<const std::int32_t> positions,
                          std::span<const float> inv_freq, float attention_factor,
                          std::span<const std::int32_t> slots, Tensor& index_k) {
    const auto dim = static_cast<int>(k.cols());
    Tensor normed = empty(k.shape);
    layer_norm(k, g, b, eps, normed);
    rope(normed, 1, dim, 0, rope_dim, positions, inv_freq, attention_factor, false);
    if (index_k.storage == Storage::fp8_row) {
        // The host arithmetic; a device backend with FP8 tables writes them itself.
        DS_ASSERT(normed.on_host(), "an FP8 index-key write reached the host default");
        rotate_and_quantize_rows(normed.data, dim);
    }
    scatter_rows(normed, slots, index_k);
}

void Ops::moe(const Tensor& x, const Tensor& router_logits, std::span<const float> bias,
              const ModelConfig& config, std::span<const ExpertWeights> experts,
              const ExpertWeights* shared, Tensor& out) {
    moe_experts(x, route_tokens(to_host(router_logits), bias, config), experts, out);
    if (shared != nullptr) {
        add_swiglu_mlp(x, *shared, out);
    }
}

void Ops::add_swiglu_mlp(const Tensor& x, const ExpertWeights& mlp, Tensor& out) {
    Tensor y = empty(out.shape);
    swiglu_mlp(x, mlp, y);
    add(out, y);
}

void Ops::swiglu_mlp(const Tensor& x, const ExpertWeights& mlp, Tensor& y) {
    const std::int64_t inter = mlp.gate->rows();
    Tensor gate = empty(x.rows(), inter), up = empty(x.rows(), inter), act = empty(x.rows(), inter);
    linears(x, std::array{mlp.gate, mlp.up}, std::array{&gate, &up});
    silu_mul(gate, up, act);
    linear(act, *mlp.down, y);
}

std::vector<std::int32_t> Ops::argmax_rows(const Tensor& logits,
                                           std::span<const std::int64_t> rows) {
    const Tensor host = rows_to_host(logits, rows);
    const auto vocab = static_cast<std::size_t>(host.cols());
    DS_ASSERT(vocab > 0, "argmax over an empty row");
    std::vector<std::int32_t> out;
    out.reserve(rows.size());
    for (std::int64_t r = 0; r < host.rows(); ++r) {
        const float* x = host.row(r);
        std::size_t best = 0;
        for (std::size_t i = 1; i < vocab; ++i) {
            if (x[i] > x[best]) {
                best = i;
            }
        }
        out.push_back(static_cast<std::int32_t>(best));
    }
    return out;
}

std::vector<std::int32_t> Ops::collect_tokens(std::int32_t first, std::int32_t n) {
    DS_ASSERT(false, "collect_tokens(", first, ", ", n,
              ") on a backend that picks no tokens ahead (pick_tokens_async returned false)");
    return {};
}

void Ops::replay_graph_step(std::span<const std::int32_t> ids, std::span<const SequenceSlots>) {
    DS_ASSERT(false, "replay_graph_step of ", ids.size(),
              " tokens on a backend that records no steps (begin_graph_step never says replay)");
}

Tensor Ops::rows_to_host(const Tensor& t, std::span<const std::int64_t> rows) {
    if (t.on_host()) {
        Tensor out(static_cast<std::int64_t>(rows.size()), t.cols());
        const auto cols = static_cast<std::size_t>(t.cols());
        for (std::size_t i = 0; i < rows.size(); ++i) {
            DS_ASSERT(rows[i] >= 0 && rows[i] < t.rows(), "row ", rows[i], " of ", t.rows());
            std::copy_n(t.row(rows[i]), cols, out.row(static_cast<std::int64_t>(i)));
        }
        return out;
    }
    Tensor picked = empty(static_cast<std::int64_t>(rows.size()), t.cols());
    gather_rows(t, rows, picked);
    return to_host(picked);
}

}  // namespace dsserve::model
