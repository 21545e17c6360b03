#include "runtime/decode_graphs.h"

#include <algorithm>

#include "core/error.h"

namespace dsserve::runtime {

using GraphStep = model::Ops::GraphStep;

DecodeGraphs::DecodeGraphs(model::DeepseekV32& model, int max_batch, std::int32_t pad_slot)
    : model_(model), sizes_(batch_sizes(max_batch)), pad_slot_(pad_slot) {
    DS_CHECK(max_batch >= 1, "--cuda-graph-max-bs must be at least 1, got ", max_batch);
}

DecodeGraphs::~DecodeGraphs() {
    model_.ops().drop_graph_steps(this);
}

std::vector<int> DecodeGraphs::batch_sizes(int max_batch) {
    std::vector<int> sizes;
    for (int b : {1, 2, 4}) {
        if (b < max_batch) {
            sizes.push_back(b);
        }
    }
    for (int b = 8; b < max_batch; b += 8) {
        sizes.push_back(b);
    }
    sizes.push_back(max_batch);
    return sizes;
}

int DecodeGraphs::key_bound(int visible, int top_k) {
    int bound = 64;
    while (bound < visible) {
        bound *= 2;
    }
    return top_k > 0 && visible <= top_k ? std::min(bound, top_k) : bound;
}

std::optional<model::ForwardResult> DecodeGraphs::forward(const model::ForwardBatch& batch,
                                                          model::KvCache& cache) {
    const auto n = static_cast<int>(batch.seqs.size());
    if (n == 0 || n > sizes_.back() || batch.num_tokens() != n) {
        return std::nullopt;
    }
    int visible = 0;
    for (const auto& s : batch.seqs) {
        if (s.num_new != 1) {
            return std::nullopt;
        }
        visible = std::max(visible, s.num_cached + 1);
    }
    const model::ModelConfig& c = model_.config();
    const int tokens = *std::lower_bound(sizes_.begin(), sizes_.end(), n);
    const int keys = key_bound(visible, c.sparse_attention ? c.index_topk : 0);
    DS_ASSERT(cache_ == nullptr || cache_ == &cache, "one DecodeGraphs serves one cache");
    cache_ = &cache;
    model::Ops& ops = model_.ops();
    const GraphStep mode = ops.begin_graph_step(this, tokens, keys);
    if (mode == GraphStep::eager) {
        return std::nullopt;
    }
    // Padding rows: token 0 at position 0, writing the spare slot and attending to it alone.
    model::ForwardBatch padded;
    padded.tokens = batch.tokens;
    padded.tokens.resize(static_cast<std::size_t>(tokens), 0);
    padded.seqs = batch.seqs;
    padded.seqs.resize(static_cast<std::size_t>(tokens),
                       model::SequenceSlots{0, 1, std::span<const std::int32_t>(&pad_slot_, 1)});
    padded.logits_on_device = true;  // a recorded step cannot wait for a copy
    const std::pair key{tokens, keys};
    model::ForwardResult result;
    if (mode == GraphStep::replay) {
        ops.replay_graph_step(padded.tokens, padded.seqs);
        result = recorded_.at(key);
        ++counts_.replayed;
    } else {
        try {
            result = model_.forward(padded, cache);
        } catch (...) {
            ops.abandon_graph_step();
            throw;
        }
        ops.end_graph_step();
        if (mode == GraphStep::record) {
            recorded_[key] = result;
            ++counts_.recorded;
        } else {
            ++counts_.run;
        }
    }
    result.logit_rows.resize(static_cast<std::size_t>(n));
    if (!batch.logits_on_device) {
        result.logits = ops.to_host(result.logits);
    }
    return result;
}

}  // namespace dsserve::runtime
