#include "model/make_model.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>

#include "core/assets.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/file.h"
#include "core/log.h"
#include "core/safetensors.h"
#include "model/config.h"
#include "model/loader.h"
#include "model/weights.h"

namespace dsserve::model {
namespace {

Json official_config() {
    return Json::parse(assets::official_config_json());
}

// Shapes small enough to run in milliseconds on two cores, with every structural feature of the
// real model: the full vocabulary, dense then MoE layers, grouped routing, a shared expert, the
// indexer with a top-k smaller than ordinary prompts, YaRN, and an MTP layer.
Json tiny_config() {
    Json c = official_config();
    c["hidden_size"] = 128;
    c["intermediate_size"] = 256;
    c["moe_intermediate_size"] = 64;
    c["num_hidden_layers"] = 4;
    c["first_k_dense_replace"] = 1;
    c["num_attention_heads"] = 4;
    c["num_key_value_heads"] = 4;
    c["q_lora_rank"] = 64;
    c["kv_lora_rank"] = 64;
    c["qk_nope_head_dim"] = 32;
    c["qk_rope_head_dim"] = 16;
    c["v_head_dim"] = 32;
    c["n_routed_experts"] = 8;
    c["num_experts_per_tok"] = 2;
    c["n_group"] = 4;
    c["topk_group"] = 2;
    c["index_n_heads"] = 16;
    c["index_head_dim"] = 32;
    c["index_topk"] = 64;
    return c;
}

Json small_config() {
    Json c = official_config();
    c["hidden_size"] = 512;
    c["intermediate_size"] = 1536;
    c["moe_intermediate_size"] = 256;
    c["num_hidden_layers"] = 6;
    c["first_k_dense_replace"] = 1;
    c["num_attention_heads"] = 8;
    c["num_key_value_heads"] = 8;
    c["q_lora_rank"] = 192;
    c["kv_lora_rank"] = 128;
    c["qk_nope_head_dim"] = 64;
    c["qk_rope_head_dim"] = 32;
    c["v_head_dim"] = 64;
    c["n_routed_experts"] = 16;
    c["num_experts_per_tok"] = 4;
    c["n_group"] = 4;
    c["topk_group"] = 2;
    c["index_n_heads"] = 16;
    c["index_head_dim"] = 64;
    c["index_topk"] = 256;
    return c;
}

std::vector<std::uint8_t> to_bf16(const Tensor& t) {
    std::vector<std::uint8_t> out(t.data.size() * 2);
    for (std::size_t i = 0; i < t.data.size(); ++i) {
        std::uint16_t b = float_to_bf16(t.data[i]);
        out[2 * i] = static_cast<std::uint8_t>(b);
        out[2 * i + 1] = static_cast<std::uint8_t>(b >> 8);
    }
    return out;
}

std::vector<std::uint8_t> to_f32(const Tensor& t) {
    std::vector<std::uint8_t> out(t.data.size() * 4);
    std::memcpy(out.data(), t.data.data(), out.size());
    return out;
}

struct Quantized {
    std::vector<std::uint8_t> fp8;
    Tensor scale;  // [ceil(rows / bn), ceil(cols / bk)]
};

// DeepSeek's block quantizer: each block's scale maps its largest magnitude to 448 (rounded up to
// a power of two for ue8m0), and the weight is stored as round(w / scale).
Quantized quantize_blocks(const Tensor& w, int bn, int bk, bool pow2_scales) {
    const std::int64_t rows = w.shape[0], cols = w.shape[1];
    const std::int64_t sr = (rows + bn - 1) / bn, sc = (cols + bk - 1) / bk;
    Quantized q;
    q.fp8.resize(static_cast<std::size_t>(rows * cols));
    q.scale = Tensor(sr, sc);
    for (std::int64_t br = 0; br < sr; ++br) {
        for (std::int64_t bc = 0; bc < sc; ++bc) {
            float amax = 0.0f;
            for (std::int64_t r = br * bn; r < std::min(rows, (br + 1) * bn); ++r) {
                for (std::int64_t c = bc * bk; c < std::min(cols, (bc + 1) * bk); ++c) {
                    amax = std::max(amax, std::fabs(w.data[r * cols + c]));
                }
            }
            float scale = std::max(amax, 1e-12f) / 448.0f;
            if (pow2_scales) {
                scale = std::exp2(std::ceil(std::log2(scale)));
            }
            q.scale.data[br * sc + bc] = scale;
            for (std::int64_t r = br * bn; r < std::min(rows, (br + 1) * bn); ++r) {
                for (std::int64_t c = bc * bk; c < std::min(cols, (bc + 1) * bk); ++c) {
                    q.fp8[static_cast<std::size_t>(r * cols + c)] =
                        float_to_fp8_e4m3(w.data[r * cols + c] / scale);
                }
            }
        }
    }
    return q;
}

std::string shard_name(std::size_t index, std::size_t count) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "model-%05zu-of-%05zu.safetensors", index + 1, count);
    return buf;
}

// See MakeModelOptions::forced_output. Embedding dimension 0 is a constant shared by every token
// (the "any other token" signal); the other dimensions tell tokens apart, and the head reads them.
class OutputForcer {
public:
    OutputForcer(const ModelConfig& c, std::vector<std::int32_t> chain)
        : c_(c), chain_(std::move(chain)) {
        std::vector<std::int32_t> sorted = chain_;
        std::sort(sorted.begin(), sorted.end());
        DS_CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end(),
                 "--force-output: the text must tokenize into distinct tokens");
        for (auto t : chain_) {
            DS_CHECK(t >= 0 && t < c.vocab_size && t != c.eos_token_id, "--force-output: token ", t,
                     " cannot be forced");
        }
    }

    void apply(const std::string& name, Tensor& w) {
        auto ends_with = [&](const std::string& suffix) {
            return name.size() >= suffix.size() &&
                   name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
        };
        const std::int64_t h = c_.hidden_size;
        if (ends_with("o_proj.weight") || ends_with("down_proj.weight")) {
            std::fill(w.data.begin(), w.data.end(), 0.0f);  // every layer passes its input through
        } else if (name == "model.norm.weight") {
            std::fill(w.data.begin(), w.data.end(), 1.0f);
        } else if (name == "model.embed_tokens.weight") {
            for (std::int64_t t = 0; t < w.shape[0]; ++t) {
                w.data[static_cast<std::size_t>(t * h)] = 4.0f;
            }
            embed_ = w;
        } else if (name == "lm_head.weight") {
            DS_CHECK(!embed_.data.empty(), "--force-output needs untied embeddings");
            std::fill(w.data.begin(), w.data.end(), 0.0f);
            // Any token outside the chain: about 20 for the first chain token, 0 elsewhere.
            w.data[static_cast<std::size_t>(chain_[0] * h)] = 5.3f;
            // A chain token: about 34 for its successor (EOS after the last).
            for (std::size_t i = 0; i < chain_.size(); ++i) {
                const float* x = embed_.row(chain_[i]);
                double ss = 0.0;
                for (std::int64_t d = 0; d < h; ++d) {
                    ss += static_cast<double>(x[d]) * x[d];
                }
                const float inv = static_cast<float>(
                    1.0 / std::sqrt(ss / static_cast<double>(h) + c_.rms_norm_eps));
                const std::int32_t next = i + 1 < chain_.size() ? chain_[i + 1] : c_.eos_token_id;
                float* row = w.row(next);
                for (std::int64_t d = 1; d < h; ++d) {
                    row[d] += 0.3f * x[d] * inv;
                }
            }
        }
    }

private:
    const ModelConfig& c_;
    std::vector<std::int32_t> chain_;
    Tensor embed_;
};

}  // namespace

Json preset_config(const std::string& name, int layers) {
    Json c;
    if (name == "tiny") {
        c = tiny_config();
    } else if (name == "small") {
        c = small_config();
    } else if (name == "full") {
        c = official_config();
    } else {
        fail("unknown preset '", name, "' (expected tiny, small or full)");
    }
    if (layers > 0) {
        c["num_hidden_layers"] = layers;
        c["first_k_dense_replace"] = std::min(c["first_k_dense_replace"].get<int>(), layers);
    }
    return c;
}

void make_model(const MakeModelOptions& options) {
    namespace fs = std::filesystem;
    Json config_json = options.config;
    if (options.dtype == CheckpointDType::kBf16) {
        config_json.erase("quantization_config");
    } else if (!config_json.contains("quantization_config")) {
        config_json["quantization_config"] = {{"activation_scheme", "dynamic"},
                                              {"fmt", "e4m3"},
                                              {"quant_method", "fp8"},
                                              {"scale_fmt", "ue8m0"},
                                              {"weight_block_size", {128, 128}}};
    }
    const ModelConfig config = ModelConfig::from_json(config_json);
    fs::create_directories(options.output);

    const bool fp8 = options.dtype == CheckpointDType::kFp8;
    std::vector<SafetensorsWriter> shards(1);
    Json weight_map = Json::object();
    std::uint64_t total = 0;
    auto place = [&](std::string name, DType dtype, std::vector<std::int64_t> shape,
                     std::vector<std::uint8_t> bytes) {
        if (!shards.back().empty() &&
            shards.back().data_bytes() + bytes.size() > options.max_shard_bytes) {
            shards.emplace_back();
        }
        total += bytes.size();
        shards.back().add(std::move(name), dtype, std::move(shape), std::move(bytes));
    };
    std::optional<OutputForcer> forcer;
    if (!options.forced_output.empty()) {
        forcer.emplace(config, options.forced_output);
    }
    for (const WeightSpec& spec : weight_manifest(config)) {
        Tensor w = random_weight(spec, options.seed);
        if (forcer) {
            forcer->apply(spec.name, w);
        }
        if (fp8 && spec.kind == WeightKind::kLinear) {
            Quantized q = quantize_blocks(
                w, config.quant.block_n, config.quant.block_k,
                config.quant.ue8m0_scales || options.scale_dtype == ScaleDType::kE8M0);
            place(spec.name, DType::kF8E4M3, spec.shape, std::move(q.fp8));
            if (options.scale_dtype == ScaleDType::kE8M0) {
                std::vector<std::uint8_t> e(q.scale.data.size());
                for (std::size_t i = 0; i < e.size(); ++i) {
                    e[i] = static_cast<std::uint8_t>(std::lround(std::log2(q.scale.data[i])) + 127);
                }
                place(spec.name + "_scale_inv", DType::kF8E8M0, q.scale.shape, std::move(e));
            } else {
                place(spec.name + "_scale_inv", DType::kF32, q.scale.shape, to_f32(q.scale));
            }
        } else if (spec.kind == WeightKind::kRouterBias) {
            place(spec.name, DType::kF32, spec.shape, to_f32(w));
        } else {
            place(spec.name, DType::kBF16, spec.shape, to_bf16(w));
        }
    }
    for (std::size_t i = 0; i < shards.size(); ++i) {
        std::string file = shard_name(i, shards.size());
        shards[i].set_metadata("format", "pt");
        shards[i].write(options.output / file);
        for (const auto& name : shards[i].names()) {
            weight_map[name] = file;
        }
    }
    Json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
    write_file(options.output / "model.safetensors.index.json", index.dump(2));
    write_file(options.output / "config.json", config_json.dump(2));
    write_file(options.output / "generation_config.json", assets::generation_config_json());
    write_file(options.output / "tokenizer.json", assets::tokenizer_json());
    write_file(options.output / "tokenizer_config.json", assets::tokenizer_config_json());
    log::info("wrote ", options.output.string(), ": ", shards.size(), " shards, ", total, " bytes");
}

}  // namespace dsserve::model
