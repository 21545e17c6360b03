// Decode steps through recorded graphs (SGLang's CUDA graph runner, --cuda-graph-max-bs): a
// batch in which every sequence brings one token is padded to a recorded batch size and handed
// to the backend as a graph step (model::Ops::GraphStep), keyed by that size and by a bound on
// the positions its longest sequence sees. A key's first step runs, its second is recorded,
// the rest replay the recording: one launch for the whole forward instead of some 150.
#pragma once

#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "model/deepseek_v32.h"

namespace dsserve::runtime {

class DecodeGraphs {
public:
    // max_batch: the largest batch recorded. pad_slot: a cache slot no request uses, where the
    // padding rows write their keys.
    DecodeGraphs(model::DeepseekV32& model, int max_batch, std::int32_t pad_slot);
    ~DecodeGraphs();  // drops this runner's recordings (they address its cache)
    DecodeGraphs(const DecodeGraphs&) = delete;
    DecodeGraphs& operator=(const DecodeGraphs&) = delete;

    // The forward of a decode batch through a graph step, or nothing where the batch is not one
    // (a prefill, more sequences than max_batch) or the backend records none: the caller then
    // runs model.forward. The logits have a row per padded sequence; rows past the batch's are
    // padding (logit_rows lists the batch's only).
    std::optional<model::ForwardResult> forward(const model::ForwardBatch& batch,
                                                model::KvCache& cache);

    // The batch sizes recorded: 1, 2, 4, 8, then every multiple of 8, up to max_batch (and it).
    static std::vector<int> batch_sizes(int max_batch);
    // The key bound of a step whose longest sequence sees `visible` positions: the power of two
    // from 64 up that holds it, but top_k where that holds it (top_k 0: no indexer), so that a
    // key's steps all use the indexer or none does (model: it scores once a sequence sees more
    // than top_k positions).
    static int key_bound(int visible, int top_k);

    // Steps by what the backend did with them (for logs and tests).
    struct Counts {
        long run = 0, recorded = 0, replayed = 0;
    };
    const Counts& counts() const { return counts_; }

private:
    model::DeepseekV32& model_;
    std::vector<int> sizes_;
    std::int32_t pad_slot_;
    Counts counts_;
    // The outputs of each key's recording: where its replays leave theirs.
    std::map<std::pair<int, int>, model::ForwardResult> recorded_;
    const model::KvCache* cache_ = nullptr;  // the one cache this runner's steps write
};

}  // namespace dsserve::runtime
