// Selections that stay on the device: the lightning indexer's top-k positions per query row and
// DeepSeek-V3's group-limited expert routing. Every pointer is device memory; each launcher
// enqueues on `stream` and checks the launch. Both reproduce their host counterparts exactly
// (backend::top_positions, model::route_tokens), ties included.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace dsserve::backend::cuda {

// For each row r < rows, the top_k largest of score[r * ld + p] for p < count[r] (ties to the
// lower p; -0.0 equals +0.0), written as positions sorted ascending into out[r * top_k ...];
// where count[r] <= top_k that is 0 .. count[r] - 1. The row's remaining entries are set to -1.
// Any top_k >= 1 and any count fit; NaN scores give some valid selection, never a fault.
void launch_row_topk(const float* score, std::int64_t ld, const std::int32_t* count, int rows,
                     int top_k, std::int32_t* out, cudaStream_t stream);

// The chosen positions as cache slots: out[r * top_k + j] = table[base[r] + chosen[r * top_k + j]],
// or -1 where the choice is -1 (launch_row_topk's rows, a sequence's slot table at base[r]).
// Given count (the rows' launch_row_topk counts), also chosen_count[r] = min(count[r], top_k), the
// number of slots row r lists.
void launch_positions_to_slots(const std::int32_t* chosen, int rows, int top_k,
                               const std::int32_t* table, const std::int32_t* base,
                               std::int32_t* out, cudaStream_t stream,
                               const std::int32_t* count = nullptr,
                               std::int32_t* chosen_count = nullptr);

// Where routed tokens are laid out for the grouped GEMV (gemv.h): *count active experts; slot i
// is expert slot_expert[i] over permuted rows [slot_start[i], slot_start[i + 1]) (experts
// ascending, each expert's rows in token order); row_token[row] is the token of a permuted row;
// combine_pos / combine_weight [tokens, top_k] list each token's rows and weights in ascending
// expert order. Slot arrays hold min(tokens * top_k, num_experts) (+1) entries.
struct MoeLayout {
    std::int32_t* count = nullptr;
    std::int32_t* slot_expert = nullptr;
    std::int32_t* slot_start = nullptr;
    std::int32_t* row_token = nullptr;
    std::int32_t* combine_pos = nullptr;
    float* combine_weight = nullptr;
};
// A layout takes at most kMaxLayoutExperts experts, kMaxLayoutAssignments assignments (its rank
// pass is quadratic in them: tens of us at the bound) and kMaxLayoutSmem bytes of shared memory
// (8 bytes an expert and 8 an assignment). moe_layout_fits says whether tokens x top_k of
// num_experts stay within all three; beyond, routing belongs on the host.
constexpr int kMaxLayoutExperts = 1024;
constexpr int kMaxLayoutAssignments = 5600;
constexpr std::size_t kMaxLayoutSmem = 48 * 1024;
bool moe_layout_fits(std::int64_t tokens, int top_k, int num_experts);

// Lays out each token's top_k experts and weights ([tokens, top_k]).
void launch_moe_group(const std::int32_t* experts, const float* weights, int tokens, int top_k,
                      int num_experts, const MoeLayout& out, cudaStream_t stream);

// The layout for steps of any size (prefill), for the tiled FP8 expert GEMM (moe_gemm.h):
// expert e's rows start at start[e], a multiple of kMoeTileRows, and fill whole tiles (padding
// rows have row_token -1); tile i is rows [i kMoeTileRows, (i + 1) kMoeTileRows) of expert
// tile_expert[i], for i < *tiles. Within an expert, rows come in no set order (atomics place
// them): no product depends on it, and combine_pos / combine_weight [tokens, width] list each
// token's rows in ascending expert order, as MoeLayout's do. counts [num_experts] must be zero
// before the first launch and are left zero. Arrays hold moe_tiles_bound tiles (x kMoeTileRows
// rows).
constexpr int kMoeTileRows = 64;
struct MoeTileLayout {
    std::int32_t* counts = nullptr;
    std::int32_t* start = nullptr;
    std::int32_t* tiles = nullptr;
    std::int32_t* tile_expert = nullptr;
    std::int32_t* row_token = nullptr;
    std::int32_t* combine_pos = nullptr;
    float* combine_weight = nullptr;
};
std::int64_t moe_tiles_bound(std::int64_t assignments, int num_experts);
// Lays out tokens x width assignments (experts [tokens, width], weights alike) of num_experts
// (at most kMaxLayoutExperts): three small launches.
void launch_moe_tile_layout(const std::int32_t* experts, const float* weights, int tokens,
                            int width, int num_experts, const MoeTileLayout& out,
                            cudaStream_t stream);

// DeepSeek-V3 noaux_tc routing of `tokens` rows of logits [tokens, experts] with the choice bias
// [experts]: expert_out and weight_out are [tokens, top_k], experts largest choice first, as
// model::route_tokens returns them. With `shared`, rows are top_k + 1 wide and end with the shared
// expert, numbered `experts`, at weight 1: every token's assignment to it. Needs experts %
// n_group == 0, at least two experts per group, 1 <= topk_group <= n_group, 1 <= top_k <= experts
// and experts <= kMaxRoutedExperts. Given a layout, the launch also lays the rows out there, as
// launch_moe_group would after it (experts + shared experts, rows of top_k + shared); `arrived`
// is one int, zero between launches.
constexpr int kMaxRoutedExperts = 1024;
void launch_moe_route(const float* logits, const float* bias, int tokens, int experts, int n_group,
                      int topk_group, int top_k, bool norm_topk_prob, float routed_scaling_factor,
                      bool shared, std::int32_t* expert_out, float* weight_out, cudaStream_t stream,
                      const MoeLayout* layout = nullptr, std::int32_t* arrived = nullptr);

}  // namespace dsserve::backend::cuda
