// Loading a model onto a backend, and running one sequence through it: the path `generate` and
// `forward` use, and the building block the scheduler batches.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "model/deepseek_v32.h"
#include "runtime/sampler.h"

namespace dsserve::runtime {

struct ModelOptions {
    std::filesystem::path model_path;
    std::string override_args;         // --json-model-override-args
    std::string load_format = "auto";  // auto (safetensors) or dummy
    std::uint64_t seed = 0;            // for dummy weights
    backend::BackendOptions backend;
    std::string kv_cache_dtype = "auto";  // --kv-cache-dtype
};

// How the MLA cache keeps its values for --kv-cache-dtype: bf16/bfloat16 or fp32/float32; "auto"
// is bfloat16 on a GPU (as SGLang keeps DeepSeek's cache there, and as the tensor-core attention
// reads it) and float32 on the CPU or with --precision fp32, whose point is float32 arithmetic
// throughout. FP8 caches are not implemented; an unknown value is an Error.
model::Storage kv_cache_storage(const std::string& dtype, const backend::BackendOptions& backend);

class LoadedModel {
public:
    explicit LoadedModel(const ModelOptions& options);
    model::DeepseekV32& model() { return *model_; }
    const model::ModelConfig& config() const { return model_->config(); }

private:
    std::unique_ptr<model::Ops> ops_;
    std::unique_ptr<model::DeepseekV32> model_;
};

// A single sequence with its own cache of max_tokens slots (slot p holds position p).
class Sequence {
public:
    Sequence(model::DeepseekV32& model, std::int32_t max_tokens);

    // Feeds tokens; returns logits of every fed token when all_logits, else of the last.
    model::ForwardResult feed(std::span<const std::int32_t> tokens, bool all_logits);
    std::int32_t length() const { return length_; }
    model::KvCache& cache() { return cache_; }
    std::span<const std::int32_t> slots() const { return slots_; }

private:
    model::DeepseekV32& model_;
    model::KvCache cache_;
    std::vector<std::int32_t> slots_;
    std::int32_t length_ = 0;
};

struct GenerateOptions {
    int max_new_tokens = 32;
    SamplingParams sampling;
    std::uint64_t seed = 0;
    bool ignore_eos = false;
};

// Prefills the prompt then decodes one token at a time; on_token sees each new token and may
// return false to stop. Returns the generated tokens.
std::vector<std::int32_t> generate(model::DeepseekV32& model, std::span<const std::int32_t> prompt,
                                   const GenerateOptions& options,
                                   const std::function<bool(std::int32_t)>& on_token = {});

}  // namespace dsserve::runtime
