// The operations the DeepSeek-V3.2 forward pass needs from a backend. The model file is written
// against this interface only; the CPU backend (backend/cpu) implements it in plain loops and
// BLAS, and is the oracle any other backend is checked against.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "model/config.h"
#include "model/tensor.h"

namespace dsserve::model {

// One sequence's part of a step: it has num_cached tokens in the cache already and brings
// num_new more. slots[p] is the cache row of the token at position p, for every position the
// step can see (num_cached + num_new of them).
struct SequenceSlots {
    std::int32_t num_cached = 0;
    std::int32_t num_new = 0;
    std::span<const std::int32_t> slots;
};

// The per-layer cache rows a step reads and writes: the compressed latent c_KV (after its norm),
// the shared rotary key k_R, and the indexer's key. latent and rope share one storage, float32 or
// bfloat16 (--kv-cache-dtype); the indexer's keys stay float32.
struct LayerCacheView {
    Tensor* latent;   // [num_slots, kv_lora_rank]
    Tensor* rope;     // [num_slots, qk_rope_head_dim]
    Tensor* index_k;  // [num_slots, index_head_dim], or null for dense attention
};

struct MlaParams {
    int num_heads;
    int qk_nope_head_dim;
    int qk_rope_head_dim;
    int v_head_dim;
    int kv_lora_rank;
    float softmax_scale;
};

// The lightning indexer's choice for a step's new tokens (Ops::indexer_topk). A host backend
// lists, for new token t, its sorted positions in positions[t]. A device backend may keep the
// choice in its own memory instead (`device`, which only it reads) and leave `positions` empty,
// so that a step never waits to bring the choice to the host; Ops::selection_positions gives the
// host form from either. Empty (no positions, no device form): every token attends to all of its
// positions.
struct IndexSelection {
    std::vector<std::vector<std::int32_t>> positions;
    std::shared_ptr<const void> device;

    bool empty() const { return positions.empty() && device == nullptr; }
};

// One row for Ops::sample_rows: the logits row to draw from, the sampling params the host
// sampler (runtime::Sampler) takes, and the draw itself, a uniform in [0, 1) that the caller
// takes from the request's own generator.
struct RowSampling {
    std::int64_t row = 0;
    float temperature = 1.0f;
    int top_k = -1;  // -1 (or anything below 1, or the vocabulary size and up): no top-k cut
    float top_p = 1.0f;
    float min_p = 0.0f;
    double canonical = 0.0;
};

struct MoeRouting {
    int top_k = 0;
    std::vector<std::int32_t> experts;  // [tokens, top_k]
    std::vector<float> weights;         // [tokens, top_k], routed_scaling_factor applied
};

struct ExpertWeights {
    const Tensor* gate;  // [inter, hidden]
    const Tensor* up;    // [inter, hidden]
    const Tensor* down;  // [hidden, inter]
};

// Standard-normal samples by Box-Muller on splitmix64 uniforms started from `state` (pair i from
// draws 2i + 1 and 2i + 2), scaled: mean + std * N(0, 1). Dummy weights use it.
struct NormalInit {
    std::uint64_t state = 0;
    float mean = 0.0f;
    float std = 1.0f;
};

class Ops {
public:
    virtual ~Ops() = default;

    // Memory. Tensors the model allocates come from here so that they live where the backend
    // computes; they start zeroed.
    virtual Tensor zeros(std::vector<std::int64_t> shape) = 0;
    Tensor zeros(std::int64_t rows, std::int64_t cols) { return zeros({rows, cols}); }
    // For outputs an op overwrites whole: the backend need not clear them.
    virtual Tensor empty(std::vector<std::int64_t> shape) { return zeros(std::move(shape)); }
    Tensor empty(std::int64_t rows, std::int64_t cols) { return empty({rows, cols}); }
    // A zeroed cache table [rows, cols] whose values are kept in `storage` (f32, bf16, or
    // fp8_row for the indexer's keys). The default keeps float32 memory tagged with the storage;
    // writes into a bf16-tagged table (scatter_rows, store_latent) round to bfloat16, and
    // store_index_key quantizes what it writes into an fp8_row one, so every backend reads the
    // same values.
    virtual Tensor cache_zeros(std::int64_t rows, std::int64_t cols, Storage storage) {
        Tensor t = zeros(rows, cols);
        t.storage = storage;
        return t;
    }
    // Moves a host tensor (a weight) to the backend's memory, in place, in the storage the model
    // asks for where the backend supports it (and float32 where not).
    virtual void to_device(Tensor& t, Storage storage = Storage::f32) = 0;
    // A host copy of t; waits for the work that produces it.
    virtual Tensor to_host(const Tensor& t) = 0;
    // Waits for all work enqueued so far (a no-op where ops run as they are called).
    virtual void synchronize() {}
    // The memory the backend allocates from: free now, and in all.
    struct MemoryInfo {
        std::uint64_t free = 0, total = 0;
    };
    virtual MemoryInfo memory_info() = 0;
    // A tensor of NormalInit samples made where the backend computes, or nothing where the
    // backend prefers the host's copy (then the loader makes it and to_device moves it).
    virtual std::optional<Tensor> random_normal(std::vector<std::int64_t> /*shape*/,
                                                const NormalInit& /*init*/) {
        return std::nullopt;
    }

    // y[T, N] = x[T, K] W[N, K]^T
    virtual void linear(const Tensor& x, const Tensor& w, Tensor& y) = 0;
    // ys[i] = x ws[i]^T for weights that share their input; a backend may read x once for all.
    virtual void linears(const Tensor& x, std::span<const Tensor* const> ws,
                         std::span<Tensor* const> ys) {
        for (std::size_t i = 0; i < ws.size(); ++i) {
            linear(x, *ws[i], *ys[i]);
        }
    }
    // y = x / rms(x) * g, row-wise over the last dim; x and y may alias.
    virtual void rms_norm(const Tensor& x, const Tensor& g, float eps, Tensor& y) = 0;
    // y = (x - mean) / std * g + b, row-wise.
    virtual void layer_norm(const Tensor& x, const Tensor& g, const Tensor& b, float eps,
                            Tensor& y) = 0;
    // Rotates, in every row r, heads of `head_stride` floats starting at `offset`: the first
    // 2 * cos_sin.cols() / 2 dims of each head, at position positions[r]. interleaved: pairs
    // (2i, 2i+1) (MLA); otherwise pairs (i, i + d/2) (the indexer).
    virtual void rope(Tensor& x, int num_heads, int head_stride, int offset, int rope_dim,
                      std::span<const std::int32_t> positions, std::span<const float> inv_freq,
                      float attention_factor, bool interleaved) = 0;
    // y = x W^T, then rope(y, ...): the queries' up-projection and their rotation, which a
    // backend may apply as the product's results leave it.
    virtual void linear_rope(const Tensor& x, const Tensor& w, Tensor& y, int num_heads,
                             int head_stride, int offset, int rope_dim,
                             std::span<const std::int32_t> positions,
                             std::span<const float> inv_freq, float attention_factor,
                             bool interleaved) {
        linear(x, w, y);
        rope(y, num_heads, head_stride, offset, rope_dim, positions, inv_freq, attention_factor,
             interleaved);
    }
    // x += y, then h = x / rms(x) * g: a residual add and the next sub-block's input norm.
    virtual void add_rms_norm(Tensor& x, const Tensor& y, const Tensor& g, float eps, Tensor& h) {
        add(x, y);
        rms_norm(x, g, eps, h);
    }
    // MLA's cache write: for kv = [c | k] rows of the new tokens, c_KV = RMSNorm(c) * g goes to
    // cache.latent and k_R = RoPE(k) (interleaved pairs, at positions[r]) to cache.rope, at
    // the slots given, in the tables' storage (float32 or bfloat16).
    virtual void store_latent(const Tensor& kv, const Tensor& g, float eps,
                              std::span<const std::int32_t> positions,
                              std::span<const float> inv_freq, float attention_factor,
                              std::span<const std::int32_t> slots, const LayerCacheView& cache);
    // The lightning indexer's cache write: for index-key rows k of the new tokens,
    // RoPE(LayerNorm(k) * g + b) (half-split pairs over the first rope_dim dims, at positions[r])
    // goes to index_k at the slots given; into an FP8 table (Storage::fp8_row) rotated and
    // quantized (hadamard_rotate, then quantize_e4m3_row: model/index_fp8.h).
    virtual void store_index_key(const Tensor& k, const Tensor& g, const Tensor& b, float eps,
                                 int rope_dim, std::span<const std::int32_t> positions,
                                 std::span<const float> inv_freq, float attention_factor,
                                 std::span<const std::int32_t> slots, Tensor& index_k);
    // out[T, I] = silu(gate) * up for gate_up = [gate | up] halves of width I.
    virtual void silu_mul(const Tensor& gate, const Tensor& up, Tensor& out) = 0;

    // out[t] = table[ids[t]]; an id -(1 + s) reads the token in slot s (pick_tokens_async).
    virtual void embedding(const Tensor& table, std::span<const std::int32_t> ids, Tensor& out) = 0;
    // x += y
    virtual void add(Tensor& x, const Tensor& y) = 0;
    // dst[:, dst_col : dst_col + n] = src[:, src_col : src_col + n]
    virtual void copy_cols(const Tensor& src, int src_col, Tensor& dst, int dst_col, int n) = 0;
    // x *= s
    virtual void scale(Tensor& x, float s) = 0;

    // dst[i] = src[rows[i]]
    virtual void gather_rows(const Tensor& src, std::span<const std::int64_t> rows,
                             Tensor& dst) = 0;
    // Writes rows of src into dst at the given slots (rounded to bfloat16 where dst is a bf16
    // cache table).
    virtual void scatter_rows(const Tensor& src, std::span<const std::int32_t> slots,
                              Tensor& dst) = 0;

    // Token choice where the logits are, so that a step moves token ids rather than logits.
    // For logits [R, vocab] and row indices into them: the index of each listed row's largest
    // value, ties to the lower index (runtime::argmax's rule, which this must equal exactly). A
    // NaN never wins against a number, except at index 0, which nothing compares greater than:
    // a row whose first value is NaN (or that is all NaN) gives 0. A row of -inf gives 0.
    // Waits for the work that produces the logits.
    virtual std::vector<std::int32_t> argmax_rows(const Tensor& logits,
                                                  std::span<const std::int64_t> rows);
    // A host copy of the listed rows of t, [rows.size(), t.cols()], in list order: the rows a
    // host sampler still needs. Waits for the work that produces t.
    virtual Tensor rows_to_host(const Tensor& t, std::span<const std::int64_t> rows);
    // Draws a token where the logits are, for rows at temperature > 0 with no penalties: the
    // token runtime::pick gives for the row's params and canonical (temperature, top-k, top-p,
    // min-p, then the walk in draw order), except where the summation order of the weights
    // moves a cut or the draw across a token's edge. Returns one id per entry, in list order.
    // The default returns nullopt: the sampler lives in the runtime, above this layer, so a
    // backend without its own kernel leaves the rows to the caller, who copies them
    // (rows_to_host) and picks on the host with the same canonical. Waits for the work that
    // produces the logits.
    virtual std::optional<std::vector<std::int32_t>> sample_rows(
        const Tensor& /*logits*/, std::span<const RowSampling> /*rows*/) {
        return std::nullopt;
    }

    // Token choice that does not wait, for an engine that enqueues step N+1 before step N's
    // tokens reach the host (an overlapped schedule). Picks as argmax_rows (rows `greedy`) and
    // sample_rows (`draws`) do, into the backend's token slots: greedy row i's token to slot
    // first + i, draw j's to slot first + greedy.size() + j. A later forward's ids may name a
    // slot: id -(1 + s) stands for the token in slot s, read when that forward's embedding runs,
    // so the token never visits the host on its way to the next step. Returns false, having
    // written nothing, where the backend cannot pick these rows without the host (the default).
    static constexpr std::int32_t kTokenSlots = 8192;
    virtual bool pick_tokens_async(const Tensor& /*logits*/,
                                   std::span<const std::int64_t> /*greedy*/,
                                   std::span<const RowSampling> /*draws*/, std::int32_t /*first*/) {
        return false;
    }
    // The tokens in slots [first, first + n), once the picks that write them are done.
    virtual std::vector<std::int32_t> collect_tokens(std::int32_t first, std::int32_t n);

    // Lightning indexer scores and top-k (V3.2 report §2.1): for each new token t of each
    // sequence, I(t, s) = sum_h w[t, h] * ReLU(q[t, h] . k_s * scale) over positions s <= pos(t),
    // and the positions of the top_k largest (all causal positions when there are fewer).
    // Ties go to the lower position. With FP8 keys (index_k in Storage::fp8_row) each head's
    // query row q[t, h] is first rotated and quantized as the keys were (model/index_fp8.h), and
    // the scores are those of the quantized values. The result, per new token, sorted positions,
    // is in the form the backend's mla_attention reads (IndexSelection).
    virtual IndexSelection indexer_topk(const Tensor& q, const Tensor& weights,
                                        std::span<const SequenceSlots> seqs, const Tensor& index_k,
                                        int num_heads, int head_dim, float scale, int top_k) = 0;
    // The host form of a selection this backend made: per new token, its sorted positions.
    virtual std::vector<std::vector<std::int32_t>> selection_positions(
        const IndexSelection& selection) {
        return selection.positions;
    }

    // Multi-head latent attention in the absorbed form (DeepSeek-V2 §2.1.2): scores are
    // q_nope W_UK . c_KV + q_rope . k_R; the output is W_UV (sum p c_KV). q is
    // [T, heads * (nope + rope)]; kv_b is kv_b_proj [heads * (nope + v), kv_lora]; out is
    // [T, heads * v]. selected, when not empty, restricts token t to its positions; it comes
    // from this backend's indexer_topk, or holds host positions. The absorbed form defines the
    // result; a backend may compute the same function unabsorbed (keys and values expanded by
    // kv_b) where that costs less, as for a prefill.
    virtual void mla_attention(const Tensor& q, std::span<const SequenceSlots> seqs,
                               const LayerCacheView& cache, const Tensor& kv_b,
                               const MlaParams& params, const IndexSelection& selected,
                               Tensor& out) = 0;

    // Called as a forward pass starts, with the host arrays its ops will send to the device:
    // token ids, the new tokens' positions and cache slots, and the sequences' slot lists. A
    // backend that copies host arrays per op may send them all in one copy here. Does nothing by
    // default.
    virtual void begin_forward(std::span<const std::int32_t> /*ids*/,
                               std::span<const std::int32_t> /*positions*/,
                               std::span<const std::int32_t> /*slots*/,
                               std::span<const SequenceSlots> /*seqs*/) {}

    // Decode steps recorded once and replayed whole (CUDA graphs: --cuda-graph-max-bs). A graph
    // step is a forward in which each of `tokens` sequences brings one token and sees at most
    // max_keys positions; the recording is keyed by both, max_keys being what sizes the kernels
    // whose work follows the context (attention's key splits, the indexer's score rows), so that
    // one recording serves every step of its key, and by its owner: a recording addresses the
    // cache it was made over, so one owner's are never replayed for another, and
    // drop_graph_steps(owner) discards them before that cache goes. The caller
    // (runtime::DecodeGraphs) pads a batch to a recorded size, asks begin_graph_step what the
    // backend does with it, and then:
    enum class GraphStep {
        eager,   // nothing is recorded: run the forward as always
        run,     // run the forward in the graph's form (its memory, the key bound), unrecorded;
                 // then end_graph_step()
        record,  // run the forward while recording it; end_graph_step() launches the recording
        replay,  // do not run the forward: replay_graph_step() sends the step's inputs and
                 // replays the recording, whose outputs are where the recorded forward's were
    };
    // A run or recorded step's outputs (the logits) stay valid until the next graph step begins.
    virtual GraphStep begin_graph_step(const void* /*owner*/, int /*tokens*/, int /*max_keys*/) {
        return GraphStep::eager;
    }
    virtual void end_graph_step() {}
    // After a run or recorded step's forward failed (threw): ends it, recording nothing, and
    // never records its key again.
    virtual void abandon_graph_step() {}
    virtual void drop_graph_steps(const void* /*owner*/) {}
    // ids: one per sequence; each sequence brings one token (num_new == 1).
    virtual void replay_graph_step(std::span<const std::int32_t> /*ids*/,
                                   std::span<const SequenceSlots> /*seqs*/);

    // Brackets ops independent of one another: none reads what another of them writes, and each
    // reads only what ops before begin_independent() wrote. A backend may run them at once (the
    // CUDA one overlaps their kernels); by default nothing changes.
    virtual void begin_independent() {}
    virtual void end_independent() {}

    // y = down(silu(gate x) * up x): a dense SwiGLU MLP (DeepSeek's dense layers and shared
    // expert); by default from the ops above.
    virtual void swiglu_mlp(const Tensor& x, const ExpertWeights& mlp, Tensor& y);
    // out += swiglu_mlp(x): the shared expert added after the routed ones.
    void add_swiglu_mlp(const Tensor& x, const ExpertWeights& mlp, Tensor& out);
    // Routed experts: out[t] += sum_k weights[t, k] * expert_k(x[t]) (SwiGLU experts).
    virtual void moe_experts(const Tensor& x, const MoeRouting& routing,
                             std::span<const ExpertWeights> experts, Tensor& out) = 0;
    // The same, routing first (DeepSeek-V3 section 2.1.2: sigmoid affinities, top-k over
    // affinity + bias within the best groups, weights from the affinities), then, when `shared`
    // is given, out[t] += shared(x[t]), the shared expert added after the routed ones. The default
    // routes on the host (model/moe_routing); a device backend can keep the choice on the device
    // and run the shared expert with the routed ones.
    virtual void moe(const Tensor& x, const Tensor& router_logits, std::span<const float> bias,
                     const ModelConfig& config, std::span<const ExpertWeights> experts,
                     const ExpertWeights* shared, Tensor& out);
};

}  // namespace dsserve::model
