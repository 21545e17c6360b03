#include "backend/cpu/cpu_ops.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <numeric>

#include "backend/common.h"
#include "core/dtype.h"
#include "core/error.h"
#include "model/index_fp8.h"

namespace dsserve::backend::cpu {

using model::Tensor;

CpuOps::CpuOps(std::size_t num_threads) : pool_(num_threads) {
    // BLAS calls are made from the calling thread only, never inside pool tasks, so OpenBLAS may
    // use as many threads as the pool.
    openblas_set_num_threads(static_cast<int>(num_threads));
}

Tensor CpuOps::zeros(std::vector<std::int64_t> shape) {
    return Tensor(std::move(shape));
}

void CpuOps::to_device(Tensor& t, model::Storage) {
    DS_ASSERT(t.on_host(), "the CPU backend got a device tensor");
}

Tensor CpuOps::to_host(const Tensor& t) {
    DS_ASSERT(t.on_host(), "the CPU backend got a device tensor");
    return t;
}

model::Ops::MemoryInfo CpuOps::memory_info() {
    MemoryInfo m;
    std::ifstream in("/proc/meminfo");
    std::string key, unit;
    std::uint64_t kb = 0;
    while (in >> key >> kb >> unit) {
        if (key == "MemAvailable:") {
            m.free = kb * 1024;
        } else if (key == "MemTotal:") {
            m.total = kb * 1024;
        }
    }
    if (m.total == 0) {  // no /proc: assume a modest machine rather than fail
        m.free = m.total = 8ull << 30;
    }
    return m;
}

void CpuOps::linear(const Tensor& x, const Tensor& w, Tensor& y) {
    const std::int64_t m = x.rows(), k = x.cols(), n = w.rows();
    DS_ASSERT(w.cols() == k && y.rows() == m && y.cols() == n, "linear [", m, ",", k, "] x [", n,
              ",", w.cols(), "] -> [", y.rows(), ",", y.cols(), "]");
    if (m == 0) {
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(n),
                static_cast<int>(k), 1.0f, x.data.data(), static_cast<int>(k), w.data.data(),
                static_cast<int>(k), 0.0f, y.data.data(), static_cast<int>(n));
}

void CpuOps::rms_norm(const Tensor& x, const Tensor& g, float eps, Tensor& y) {
    const std::int64_t d = x.cols();
    DS_ASSERT(g.numel() == d && y.numel() == x.numel(), d, " ", g.numel());
    pool_.parallel_for(
        static_cast<std::size_t>(x.rows()),
        [&](std::size_t b, std::size_t e) {
            for (std::size_t r = b; r < e; ++r) {
                const float* in = x.row(static_cast<std::int64_t>(r));
                float* out = y.row(static_cast<std::int64_t>(r));
                float sum = 0.0f;
                for (std::int64_t i = 0; i < d; ++i) {
                    sum += in[i] * in[i];
                }
                float inv = 1.0f / std::sqrt(sum / static_cast<float>(d) + eps);
                for (std::int64_t i = 0; i < d; ++i) {
                    out[i] = g.data[i] * (in[i] * inv);
                }
            }
        },
        16);
}

void CpuOps::layer_norm(const Tensor& x, const Tensor& g, const Tensor& b, float eps, Tensor& y) {
    const std::int64_t d = x.cols();
    DS_ASSERT(g.numel() == d && b.numel() == d && y.numel() == x.numel(), d);
    for (std::int64_t r = 0; r < x.rows(); ++r) {
        const float* in = x.row(r);
        float* out = y.row(r);
        float mean = 0.0f;
        for (std::int64_t i = 0; i < d; ++i) {
            mean += in[i];
        }
        mean /= static_cast<float>(d);
        float var = 0.0f;
        for (std::int64_t i = 0; i < d; ++i) {
            var += (in[i] - mean) * (in[i] - mean);
        }
        var /= static_cast<float>(d);
        float inv = 1.0f / std::sqrt(var + eps);
        for (std::int64_t i = 0; i < d; ++i) {
            out[i] = (in[i] - mean) * inv * g.data[i] + b.data[i];
        }
    }
}

void CpuOps::rope(Tensor& x, int num_heads, int head_stride, int offset, int rope_dim,
                  std::span<const std::int32_t> positions, std::span<const float> inv_freq,
                  float attention_factor, bool interleaved) {
    const int half = rope_dim / 2;
    DS_ASSERT(static_cast<int>(inv_freq.size()) == half &&
                  x.rows() == static_cast<std::int64_t>(positions.size()) &&
                  x.cols() == static_cast<std::int64_t>(num_heads) * head_stride,
              x.rows(), " ", x.cols());
    for (std::int64_t r = 0; r < x.rows(); ++r) {
        const float pos = static_cast<float>(positions[static_cast<std::size_t>(r)]);
        float* row = x.row(r);
        for (int i = 0; i < half; ++i) {
            const float angle = pos * inv_freq[static_cast<std::size_t>(i)];
            const float c = std::cos(angle) * attention_factor;
            const float s = std::sin(angle) * attention_factor;
            for (int h = 0; h < num_heads; ++h) {
                float* v = row + h * head_stride + offset;
                float* a = interleaved ? v + 2 * i : v + i;
                float* b = interleaved ? v + 2 * i + 1 : v + i + half;
                const float x0 = *a, x1 = *b;
                *a = x0 * c - x1 * s;
                *b = x1 * c + x0 * s;
            }
        }
    }
}

void CpuOps::silu_mul(const Tensor& gate, const Tensor& up, Tensor& out) {
    DS_ASSERT(gate.numel() == up.numel() && out.numel() == gate.numel(), gate.numel());
    for (std::int64_t i = 0; i < gate.numel(); ++i) {
        const float g = gate.data[i];
        out.data[i] = g / (1.0f + std::exp(-g)) * up.data[i];
    }
}

void CpuOps::embedding(const Tensor& table, std::span<const std::int32_t> ids, Tensor& out) {
    const std::int64_t d = table.cols();
    DS_ASSERT(out.rows() == static_cast<std::int64_t>(ids.size()) && out.cols() == d, out.rows());
    for (std::size_t i = 0; i < ids.size(); ++i) {
        std::int32_t id = ids[i];
        if (id < 0) {
            const std::int64_t slot = -1 - static_cast<std::int64_t>(id);
            DS_ASSERT(slot < static_cast<std::int64_t>(token_slots_.size()), "token slot ", slot,
                      " was never picked into");
            id = token_slots_[static_cast<std::size_t>(slot)];
        }
        DS_ASSERT(id >= 0 && id < table.rows(), "token id ", id, " outside vocab ", table.rows());
        std::memcpy(out.row(static_cast<std::int64_t>(i)), table.row(id),
                    static_cast<std::size_t>(d) * sizeof(float));
    }
}

bool CpuOps::pick_tokens_async(const Tensor& logits, std::span<const std::int64_t> greedy,
                               std::span<const model::RowSampling> draws, std::int32_t first) {
    if (!draws.empty()) {
        return false;
    }
    DS_ASSERT(first >= 0 && static_cast<std::int64_t>(greedy.size()) <= kTokenSlots - first,
              "token slots [", first, ", +", greedy.size(), ") past ", kTokenSlots);
    const std::vector<std::int32_t> picked = argmax_rows(logits, greedy);
    token_slots_.resize(static_cast<std::size_t>(kTokenSlots));
    std::copy(picked.begin(), picked.end(), token_slots_.begin() + first);
    return true;
}

std::vector<std::int32_t> CpuOps::collect_tokens(std::int32_t first, std::int32_t n) {
    DS_ASSERT(first >= 0 && n >= 0 && static_cast<std::size_t>(first + n) <= token_slots_.size(),
              "token slots [", first, ", +", n, ") were never picked into");
    return {token_slots_.begin() + first, token_slots_.begin() + first + n};
}

void CpuOps::add(Tensor& x, const Tensor& y) {
    DS_ASSERT(x.numel() == y.numel(), x.numel(), " ", y.numel());
    for (std::int64_t i = 0; i < x.numel(); ++i) {
        x.data[i] += y.data[i];
    }
}

void CpuOps::copy_cols(const Tensor& src, int src_col, Tensor& dst, int dst_col, int n) {
    DS_ASSERT(src.rows() == dst.rows() && src_col + n <= src.cols() && dst_col + n <= dst.cols(),
              src.rows(), " ", dst.rows());
    for (std::int64_t r = 0; r < src.rows(); ++r) {
        std::memcpy(dst.row(r) + dst_col, src.row(r) + src_col,
                    static_cast<std::size_t>(n) * sizeof(float));
    }
}

void CpuOps::scale(Tensor& x, float s) {
    for (float& v : x.data) {
        v *= s;
    }
}

void CpuOps::gather_rows(const Tensor& src, std::span<const std::int64_t> rows, Tensor& dst) {
    DS_ASSERT(dst.rows() == static_cast<std::int64_t>(rows.size()) && src.cols() == dst.cols(),
              dst.rows(), " ", rows.size());
    for (std::size_t i = 0; i < rows.size(); ++i) {
        DS_ASSERT(rows[i] >= 0 && rows[i] < src.rows(), "row ", rows[i]);
        std::memcpy(dst.row(static_cast<std::int64_t>(i)), src.row(rows[i]),
                    static_cast<std::size_t>(src.cols()) * sizeof(float));
    }
}

void CpuOps::scatter_rows(const Tensor& src, std::span<const std::int32_t> slots, Tensor& dst) {
    DS_ASSERT(src.rows() == static_cast<std::int64_t>(slots.size()) && src.cols() == dst.cols(),
              src.rows(), " ", slots.size());
    for (std::size_t i = 0; i < slots.size(); ++i) {
        DS_ASSERT(slots[i] >= 0 && slots[i] < dst.rows(), "slot ", slots[i]);
        std::memcpy(dst.row(slots[i]), src.row(static_cast<std::int64_t>(i)),
                    static_cast<std::size_t>(src.cols()) * sizeof(float));
        if (dst.storage == model::Storage::bf16) {
            float* row = dst.row(slots[i]);
            for (std::int64_t c = 0; c < dst.cols(); ++c) {
                row[c] = bf16_to_float(float_to_bf16(row[c]));
            }
        }
    }
}

model::IndexSelection CpuOps::indexer_topk(const Tensor& q, const Tensor& weights,
                                           std::span<const model::SequenceSlots> seqs,
                                           const Tensor& index_k, int num_heads, int head_dim,
                                           float scale, int top_k) {
    // (sequence, token) of each batch row.
    std::vector<std::pair<std::size_t, std::int32_t>> rows;
    for (std::size_t s = 0; s < seqs.size(); ++s) {
        for (std::int32_t j = 0; j < seqs[s].num_new; ++j) {
            rows.emplace_back(s, j);
        }
    }
    std::vector<std::vector<std::int32_t>> selected(rows.size());
    const bool fp8 = index_k.storage == model::Storage::fp8_row;
    pool_.parallel_for(rows.size(), [&](std::size_t b, std::size_t e) {
        std::vector<float> score, qr;
        for (std::size_t r = b; r < e; ++r) {
            const auto& seq = seqs[rows[r].first];
            const std::int32_t pos = seq.num_cached + rows[r].second;
            const std::int32_t visible = pos + 1;
            auto& out = selected[r];
            if (visible <= top_k) {
                out.resize(static_cast<std::size_t>(visible));
                std::iota(out.begin(), out.end(), 0);
                continue;
            }
            const float* qrow = q.row(static_cast<std::int64_t>(r));
            if (fp8) {
                qr.assign(qrow, qrow + q.cols());
                model::rotate_and_quantize_rows(qr, head_dim);
                qrow = qr.data();
            }
            const float* wrow = weights.row(static_cast<std::int64_t>(r));
            score.assign(static_cast<std::size_t>(visible), 0.0f);
            for (std::int32_t p = 0; p < visible; ++p) {
                const float* k = index_k.row(seq.slots[static_cast<std::size_t>(p)]);
                float total = 0.0f;
                for (int h = 0; h < num_heads; ++h) {
                    const float* qh = qrow + static_cast<std::ptrdiff_t>(h) * head_dim;
                    float dot = 0.0f;
                    for (int d = 0; d < head_dim; ++d) {
                        dot += qh[d] * k[d];
                    }
                    total += wrow[h] * std::max(0.0f, dot * scale);
                }
                score[static_cast<std::size_t>(p)] = total;
            }
            out = top_positions(score, top_k);
        }
    });
    return {std::move(selected), nullptr};
}

void CpuOps::mla_attention(const Tensor& q, std::span<const model::SequenceSlots> seqs,
                           const model::LayerCacheView& cache, const Tensor& kv_b,
                           const model::MlaParams& p, const model::IndexSelection& selection,
                           Tensor& out) {
    const std::int64_t t = q.rows();
    const int heads = p.num_heads, nope = p.qk_nope_head_dim, rope = p.qk_rope_head_dim;
    const int lora = p.kv_lora_rank, v = p.v_head_dim, qk = nope + rope;
    check_mla_shapes(q, kv_b, p, selection, out);
    DS_ASSERT(selection.device == nullptr, "a device selection reached the CPU backend");
    const auto& selected = selection.positions;
    if (t == 0) {
        return;
    }
    // Absorb W_UK into the query: q_lat[t, h] = q_nope[t, h] W_UK_h, [T, heads * lora].
    Tensor q_lat(t, static_cast<std::int64_t>(heads) * lora);
    for (int h = 0; h < heads; ++h) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(t), lora, nope,
                    1.0f, q.data.data() + h * qk, heads * qk,
                    kv_b.data.data() + static_cast<std::ptrdiff_t>(h) * (nope + v) * lora, lora,
                    0.0f, q_lat.data.data() + static_cast<std::ptrdiff_t>(h) * lora, heads * lora);
    }
    std::vector<std::pair<std::size_t, std::int32_t>> rows;
    for (std::size_t s = 0; s < seqs.size(); ++s) {
        for (std::int32_t j = 0; j < seqs[s].num_new; ++j) {
            rows.emplace_back(s, j);
        }
    }
    Tensor o_lat(t, static_cast<std::int64_t>(heads) * lora);
    const std::size_t work = static_cast<std::size_t>(t) * static_cast<std::size_t>(heads);
    pool_.parallel_for(
        work,
        [&](std::size_t b, std::size_t e) {
            std::vector<float> prob;
            std::vector<std::int32_t> all;
            for (std::size_t item = b; item < e; ++item) {
                const std::size_t r = item / static_cast<std::size_t>(heads);
                const int h = static_cast<int>(item % static_cast<std::size_t>(heads));
                const auto& seq = seqs[rows[r].first];
                const std::int32_t pos = seq.num_cached + rows[r].second;
                const std::vector<std::int32_t>* keys;
                if (selected.empty()) {
                    all.resize(static_cast<std::size_t>(pos + 1));
                    std::iota(all.begin(), all.end(), 0);
                    keys = &all;
                } else {
                    keys = &selected[r];
                }
                const float* ql =
                    q_lat.row(static_cast<std::int64_t>(r)) + static_cast<std::ptrdiff_t>(h) * lora;
                const float* qr = q.row(static_cast<std::int64_t>(r)) + h * qk + nope;
                prob.resize(keys->size());
                float max_score = -INFINITY;
                for (std::size_t i = 0; i < keys->size(); ++i) {
                    const std::int32_t position = (*keys)[i];
                    DS_ASSERT(position >= 0 && position <= pos, "position ", position, " > ", pos);
                    const std::int32_t slot = seq.slots[static_cast<std::size_t>(position)];
                    const float* c = cache.latent->row(slot);
                    const float* kr = cache.rope->row(slot);
                    float dot = 0.0f;
                    for (int d = 0; d < lora; ++d) {
                        dot += ql[d] * c[d];
                    }
                    for (int d = 0; d < rope; ++d) {
                        dot += qr[d] * kr[d];
                    }
                    prob[i] = dot * p.softmax_scale;
                    max_score = std::max(max_score, prob[i]);
                }
                float denom = 0.0f;
                for (float& s : prob) {
                    s = std::exp(s - max_score);
                    denom += s;
                }
                float* ol =
                    o_lat.row(static_cast<std::int64_t>(r)) + static_cast<std::ptrdiff_t>(h) * lora;
                std::fill(ol, ol + lora, 0.0f);
                for (std::size_t i = 0; i < keys->size(); ++i) {
                    const float w = prob[i] / denom;
                    const float* c =
                        cache.latent->row(seq.slots[static_cast<std::size_t>((*keys)[i])]);
                    for (int d = 0; d < lora; ++d) {
                        ol[d] += w * c[d];
                    }
                }
            }
        },
        4);
    // out[t, h] = o_lat[t, h] W_UV_h^T.
    for (int h = 0; h < heads; ++h) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(t), v, lora, 1.0f,
                    o_lat.data.data() + static_cast<std::ptrdiff_t>(h) * lora, heads * lora,
                    kv_b.data.data() + (static_cast<std::ptrdiff_t>(h) * (nope + v) + nope) * lora,
                    lora, 0.0f, out.data.data() + h * v, heads * v);
    }
}

void CpuOps::moe_experts(const Tensor& x, const model::MoeRouting& routing,
                         std::span<const model::ExpertWeights> experts, Tensor& out) {
    const std::int64_t t = x.rows(), hidden = x.cols();
    std::vector<std::vector<std::pair<std::int64_t, float>>> assigned(experts.size());
    for (std::int64_t i = 0; i < t; ++i) {
        for (int k = 0; k < routing.top_k; ++k) {
            std::size_t idx = static_cast<std::size_t>(i * routing.top_k + k);
            auto e = static_cast<std::size_t>(routing.experts[idx]);
            DS_ASSERT(e < experts.size(), "expert ", e);
            assigned[e].emplace_back(i, routing.weights[idx]);
        }
    }
    for (std::size_t e = 0; e < experts.size(); ++e) {
        const auto& tokens = assigned[e];
        if (tokens.empty()) {
            continue;
        }
        const auto n = static_cast<std::int64_t>(tokens.size());
        const std::int64_t inter = experts[e].gate->rows();
        Tensor xe(n, hidden), gate(n, inter), up(n, inter), act(n, inter), ye(n, hidden);
        for (std::int64_t i = 0; i < n; ++i) {
            std::memcpy(xe.row(i), x.row(tokens[static_cast<std::size_t>(i)].first),
                        static_cast<std::size_t>(hidden) * sizeof(float));
        }
        linear(xe, *experts[e].gate, gate);
        linear(xe, *experts[e].up, up);
        silu_mul(gate, up, act);
        linear(act, *experts[e].down, ye);
        for (std::int64_t i = 0; i < n; ++i) {
            const auto [row, weight] = tokens[static_cast<std::size_t>(i)];
            float* o = out.row(row);
            const float* y = ye.row(i);
            for (std::int64_t d = 0; d < hidden; ++d) {
                o[d] += weight * y[d];
            }
        }
    }
}

}  // namespace dsserve::backend::cpu
