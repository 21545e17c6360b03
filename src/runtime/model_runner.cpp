#include "runtime/model_runner.h"

#include <numeric>

#include "core/error.h"
#include "core/log.h"
#include "model/loader.h"

namespace dsserve::runtime {

LoadedModel::LoadedModel(const ModelOptions& options) {
    DS_CHECK(options.load_format == "auto" || options.load_format == "safetensors" ||
                 options.load_format == "dummy",
             "--load-format '", options.load_format,
             "' is not supported (auto, safetensors, dummy)");
    auto config = model::ModelConfig::load(options.model_path, options.override_args);
    ops_ = backend::make_backend(options.backend);
    ThreadPool loader_pool(ThreadPool::default_threads());
    model::LoadOptions load;
    load.dummy = options.load_format == "dummy";
    load.seed = options.seed;
    load.place = [&](const model::WeightSpec& spec, model::Tensor& t) {
        if (auto where = model::DeepseekV32::placement(spec, config)) {
            ops_->to_device(t, *where);
        }
    };
    load.make_dummy = [&](const model::WeightSpec& spec, const model::NormalInit& init,
                          model::Tensor& t) {
        auto where = model::DeepseekV32::placement(spec, config);
        if (!where) {
            return false;
        }
        auto made = ops_->random_normal(spec.shape, init);
        if (!made) {
            return false;
        }
        t = std::move(*made);
        ops_->to_device(t, *where);
        return true;
    };
    auto weights = model::load_weights(config, options.model_path, load, loader_pool);
    model_ = std::make_unique<model::DeepseekV32>(std::move(config), std::move(weights), *ops_);
    model_->set_cache_storage(kv_cache_storage(options.kv_cache_dtype, options.backend));
}

model::Storage kv_cache_storage(const std::string& dtype, const backend::BackendOptions& backend) {
    if (dtype == "bf16" || dtype == "bfloat16") {
        return model::Storage::bf16;
    }
    if (dtype == "fp32" || dtype == "float32") {
        return model::Storage::f32;
    }
    DS_CHECK(dtype == "auto", "--kv-cache-dtype ", dtype,
             (dtype.starts_with("fp8") ? ": an FP8 KV cache is not implemented yet" : ": unknown"),
             "; use auto, bf16 or fp32");
    const bool gpu = backend.device.starts_with("cuda");
    return gpu && backend.precision != "fp32" ? model::Storage::bf16 : model::Storage::f32;
}

Sequence::Sequence(model::DeepseekV32& model, std::int32_t max_tokens)
    : model_(model),
      cache_(model.make_cache(max_tokens)),
      slots_(static_cast<std::size_t>(max_tokens)) {
    std::iota(slots_.begin(), slots_.end(), 0);
}

model::ForwardResult Sequence::feed(std::span<const std::int32_t> tokens, bool all_logits) {
    const auto n = static_cast<std::int32_t>(tokens.size());
    DS_CHECK(length_ + n <= cache_.num_slots(), "sequence of ", length_ + n,
             " tokens exceeds its cache of ", cache_.num_slots());
    model::ForwardBatch batch;
    batch.tokens.assign(tokens.begin(), tokens.end());
    batch.seqs.push_back({length_, n, slots_});
    batch.all_logits = all_logits;
    auto out = model_.forward(batch, cache_);
    length_ += n;
    return out;
}

std::vector<std::int32_t> generate(model::DeepseekV32& model, std::span<const std::int32_t> prompt,
                                   const GenerateOptions& options,
                                   const std::function<bool(std::int32_t)>& on_token) {
    DS_CHECK(!prompt.empty(), "the prompt is empty");
    const auto& config = model.config();
    for (std::int32_t id : prompt) {
        DS_CHECK(id >= 0 && id < config.vocab_size, "token id ", id, " is outside the vocabulary (",
                 config.vocab_size, ")");
    }
    const std::int64_t total = static_cast<std::int64_t>(prompt.size()) + options.max_new_tokens;
    DS_CHECK(total <= config.max_position_embeddings, "prompt plus max_new_tokens (", total,
             ") exceeds the context length ", config.max_position_embeddings);
    Sequence seq(model, static_cast<std::int32_t>(total));
    Sampler sampler(options.seed);
    std::vector<std::int32_t> out;
    auto result = seq.feed(prompt, false);
    for (int i = 0; i < options.max_new_tokens; ++i) {
        std::span<const float> logits(result.logits.row(0),
                                      static_cast<std::size_t>(config.vocab_size));
        std::int32_t next = sampler.sample(logits, options.sampling);
        out.push_back(next);
        bool go_on = on_token ? on_token(next) : true;
        if (!go_on || (!options.ignore_eos && next == config.eos_token_id) ||
            i + 1 == options.max_new_tokens) {
            break;
        }
        result = seq.feed(std::span<const std::int32_t>(&out.back(), 1), false);
    }
    return out;
}

}  // namespace dsserve::runtime
