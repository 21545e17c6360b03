// Writes a complete Hugging-Face-layout checkpoint directory for any valid configuration:
// config.json, generation_config.json, the DeepSeek-V3.2 tokenizer files, and the weights of the
// manifest (random, deterministic in the seed), block-FP8 quantized like the official release or
// in BF16, sharded over several safetensors files with an index.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/json.h"

namespace dsserve::model {

enum class CheckpointDType { kFp8, kBf16 };
enum class ScaleDType { kF32, kE8M0 };

struct MakeModelOptions {
    std::filesystem::path output;
    Json config;  // a full config.json
    std::uint64_t seed = 0;
    CheckpointDType dtype = CheckpointDType::kFp8;
    ScaleDType scale_dtype = ScaleDType::kF32;
    std::uint64_t max_shard_bytes = 64ull << 20;
    // When set, the weights force greedy decoding to emit exactly these tokens (then EOS) after
    // any prompt that does not end inside the sequence: every decoder layer's output projections
    // are zero, so each position sees only its own token, and the head maps each token of the
    // sequence to the next and every other token to the first. The ids must be distinct.
    std::vector<std::int32_t> forced_output;
};

// Named presets: "tiny" (the embedded default model), "small", "full" (official dimensions with
// `layers` decoder layers, or all 61 when layers is 0).
Json preset_config(const std::string& name, int layers);

void make_model(const MakeModelOptions& options);

}  // namespace dsserve::model
