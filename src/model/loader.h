// Turns a checkpoint (or, with --load-format dummy, the config alone) into float32 host weights.
// Block-FP8 linears are dequantized with their weight_scale_inv blocks; every tensor's presence,
// dtype and shape is checked against the manifest first.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>

#include "core/safetensors.h"
#include "core/thread_pool.h"
#include "model/config.h"
#include "model/ops.h"
#include "model/tensor.h"
#include "model/weights.h"

namespace dsserve::model {

class WeightStore {
public:
    const Tensor& at(const std::string& name) const;
    bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
    void put(std::string name, Tensor t) { tensors_[std::move(name)] = std::move(t); }
    Tensor take(const std::string& name);
    Tensor& at_mutable(const std::string& name) { return tensors_.at(name); }
    std::size_t size() const { return tensors_.size(); }
    auto begin() { return tensors_.begin(); }
    auto end() { return tensors_.end(); }

private:
    std::unordered_map<std::string, Tensor> tensors_;
};

struct LoadOptions {
    bool dummy = false;      // random weights from the config, no files
    std::uint64_t seed = 0;  // for dummy weights
    bool progress = true;    // a progress bar when stderr is a terminal
    // Called on each tensor as soon as it is decoded (from several threads at once), so that a
    // backend can move it to its memory before the next is decoded: a large model never needs
    // all of its float32 weights on the host at once.
    std::function<void(const WeightSpec&, Tensor&)> place;
    // Dummy weights: called first with the tensor's generator; when it returns true it has made
    // the tensor itself (a device backend generates and places it without a host copy).
    std::function<bool(const WeightSpec&, const NormalInit&, Tensor&)> make_dummy;
};

// Loads every manifest tensor. MTP tensors that a checkpoint lacks (for example when the layer
// count was overridden) are skipped with a warning; mtp_loaded() then says false.
struct LoadedWeights {
    WeightStore store;
    bool mtp_loaded = false;
};
LoadedWeights load_weights(const ModelConfig& config, const std::filesystem::path& dir,
                           const LoadOptions& options, ThreadPool& pool);

// Decodes one stored tensor to float32. For F8_E4M3 the scale tensor (F32, BF16 or F8_E8M0) of
// shape [ceil(rows / block_n), ceil(cols / block_k)] is required.
Tensor decode_tensor(const Checkpoint::Ref& ref, const Checkpoint::Ref* scale, int block_n,
                     int block_k);

// The initial values make-model and --load-format dummy use: deterministic in (seed, name),
// mean + std * N(0, 1) from the generator random_init describes.
NormalInit random_init(const WeightSpec& spec, std::uint64_t seed);
Tensor random_weight(const WeightSpec& spec, std::uint64_t seed);

}  // namespace dsserve::model
