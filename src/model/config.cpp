#include "model/config.h"

#include <cmath>

#include "core/error.h"
#include "core/file.h"

namespace dsserve::model {
namespace {

class Reader {
public:
    explicit Reader(const Json& json) : json_(json) {}

    template <typename T>
    T required(const char* key) const {
        auto it = json_.find(key);
        DS_CHECK(it != json_.end() && !it->is_null(), "config.json: missing required field '", key,
                 "'");
        return get<T>(key, *it);
    }
    template <typename T>
    T optional(const char* key, T fallback) const {
        auto it = json_.find(key);
        if (it == json_.end() || it->is_null()) {
            return fallback;
        }
        return get<T>(key, *it);
    }

private:
    template <typename T>
    static T get(const char* key, const Json& v) {
        if constexpr (std::is_same_v<T, bool>) {
            DS_CHECK(v.is_boolean(), "config.json: field '", key, "' must be a boolean");
        } else if constexpr (std::is_integral_v<T>) {
            DS_CHECK(v.is_number_integer(), "config.json: field '", key, "' must be an integer");
        } else if constexpr (std::is_floating_point_v<T>) {
            DS_CHECK(v.is_number(), "config.json: field '", key, "' must be a number");
        } else {
            DS_CHECK(v.is_string(), "config.json: field '", key, "' must be a string");
        }
        return v.get<T>();
    }

    const Json& json_;
};

void positive(std::int64_t value, const char* key) {
    DS_CHECK(value > 0, "config.json: field '", key, "' must be positive, got ", value);
}

double yarn_mscale(double scale, double mscale) {
    return scale <= 1.0 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}

}  // namespace

Json apply_overrides(Json base, const std::string& overrides) {
    if (overrides.empty()) {
        return base;
    }
    Json patch = Json::parse(overrides, nullptr, false);
    DS_CHECK(!patch.is_discarded() && patch.is_object(),
             "--json-model-override-args must be a JSON object, got: ", overrides);
    for (const auto& [key, value] : patch.items()) {
        if (value.is_object() && base.contains(key) && base[key].is_object()) {
            for (const auto& [k, v] : value.items()) {
                base[key][k] = v;
            }
        } else {
            base[key] = value;
        }
    }
    return base;
}

ModelConfig ModelConfig::from_json(const Json& json) {
    DS_CHECK(json.is_object(), "config.json: not a JSON object");
    Reader r(json);
    ModelConfig c;
    c.json = json;
    c.model_type = r.required<std::string>("model_type");
    DS_CHECK(c.model_type == "deepseek_v32" || c.model_type == "deepseek_v3",
             "config.json: model_type '", c.model_type,
             "' is not supported (expected deepseek_v32 or deepseek_v3)");
    c.sparse_attention = c.model_type == "deepseek_v32";
    if (auto it = json.find("architectures"); it != json.end() && it->is_array() && !it->empty()) {
        DS_CHECK((*it)[0].is_string(), "config.json: field 'architectures' must hold strings");
        c.architecture = (*it)[0].get<std::string>();
    } else {
        c.architecture = c.sparse_attention ? "DeepseekV32ForCausalLM" : "DeepseekV3ForCausalLM";
    }
    DS_CHECK(
        c.architecture == "DeepseekV32ForCausalLM" || c.architecture == "DeepseekV3ForCausalLM",
        "config.json: architecture '", c.architecture, "' is not supported");

    c.vocab_size = r.required<std::int64_t>("vocab_size");
    c.hidden_size = r.required<std::int64_t>("hidden_size");
    c.intermediate_size = r.required<std::int64_t>("intermediate_size");
    c.num_hidden_layers = r.required<int>("num_hidden_layers");
    c.num_attention_heads = r.required<int>("num_attention_heads");
    c.num_nextn_predict_layers = r.optional<int>("num_nextn_predict_layers", 0);
    int kv_heads = r.optional<int>("num_key_value_heads", c.num_attention_heads);

    c.q_lora_rank = r.optional<int>("q_lora_rank", 0);
    c.kv_lora_rank = r.required<int>("kv_lora_rank");
    c.qk_nope_head_dim = r.required<int>("qk_nope_head_dim");
    c.qk_rope_head_dim = r.required<int>("qk_rope_head_dim");
    c.v_head_dim = r.required<int>("v_head_dim");

    c.n_routed_experts = r.optional<int>("n_routed_experts", 0);
    c.n_shared_experts = r.optional<int>("n_shared_experts", 0);
    c.num_experts_per_tok = r.optional<int>("num_experts_per_tok", 0);
    c.moe_intermediate_size = r.optional<std::int64_t>("moe_intermediate_size", 0);
    c.n_group = r.optional<int>("n_group", 1);
    c.topk_group = r.optional<int>("topk_group", 1);
    c.first_k_dense_replace = r.optional<int>("first_k_dense_replace", 0);
    c.moe_layer_freq = r.optional<int>("moe_layer_freq", 1);
    c.routed_scaling_factor = r.optional<double>("routed_scaling_factor", 1.0);
    c.norm_topk_prob = r.optional<bool>("norm_topk_prob", true);
    std::string scoring = r.optional<std::string>("scoring_func", "sigmoid");
    DS_CHECK(scoring == "sigmoid", "config.json: scoring_func '", scoring,
             "' is not supported (DeepSeek-V3 routing uses sigmoid)");
    std::string topk_method = r.optional<std::string>("topk_method", "noaux_tc");
    DS_CHECK(topk_method == "noaux_tc", "config.json: topk_method '", topk_method,
             "' is not supported (expected noaux_tc)");
    std::string act = r.optional<std::string>("hidden_act", "silu");
    DS_CHECK(act == "silu", "config.json: hidden_act '", act, "' is not supported");

    if (c.sparse_attention) {
        c.index_n_heads = r.required<int>("index_n_heads");
        c.index_head_dim = r.required<int>("index_head_dim");
        c.index_topk = r.required<int>("index_topk");
    }
    c.rms_norm_eps = r.optional<double>("rms_norm_eps", 1e-6);
    c.max_position_embeddings = r.required<std::int64_t>("max_position_embeddings");
    c.bos_token_id = r.optional<int>("bos_token_id", 0);
    if (auto it = json.find("eos_token_id"); it != json.end() && it->is_array() && !it->empty()) {
        DS_CHECK((*it)[0].is_number_integer(),
                 "config.json: field 'eos_token_id' must be integers");
        c.eos_token_id = (*it)[0].get<int>();
    } else {
        c.eos_token_id = r.optional<int>("eos_token_id", 1);
    }
    c.tie_word_embeddings = r.optional<bool>("tie_word_embeddings", false);

    // transformers 5 writes rope_parameters (with rope_theta inside); DeepSeek's files
    // rope_scaling.
    c.rope_theta = r.optional<double>("rope_theta", 10000.0);
    const Json* rope = nullptr;
    if (auto it = json.find("rope_scaling"); it != json.end() && it->is_object()) {
        rope = &*it;
    } else if (auto it2 = json.find("rope_parameters"); it2 != json.end() && it2->is_object()) {
        rope = &*it2;
    }
    if (rope != nullptr) {
        Reader rr(*rope);
        std::string type =
            rr.optional<std::string>("type", rr.optional<std::string>("rope_type", "default"));
        c.rope_theta = rr.optional<double>("rope_theta", c.rope_theta);
        if (type == "yarn") {
            c.rope_scaling.yarn = true;
            c.rope_scaling.factor = rr.required<double>("factor");
            c.rope_scaling.original_max_position_embeddings =
                rr.required<std::int64_t>("original_max_position_embeddings");
            c.rope_scaling.beta_fast = rr.optional<double>("beta_fast", 32.0);
            c.rope_scaling.beta_slow = rr.optional<double>("beta_slow", 1.0);
            c.rope_scaling.mscale = rr.optional<double>("mscale", 1.0);
            c.rope_scaling.mscale_all_dim = rr.optional<double>("mscale_all_dim", 0.0);
        } else {
            DS_CHECK(type == "default", "config.json: rope_scaling type '", type,
                     "' is not supported (yarn or none)");
        }
    }

    if (auto it = json.find("quantization_config"); it != json.end() && !it->is_null()) {
        DS_CHECK(it->is_object(), "config.json: quantization_config must be an object");
        Reader q(*it);
        std::string method = q.required<std::string>("quant_method");
        DS_CHECK(method == "fp8", "config.json: quantization_config.quant_method '", method,
                 "' is not supported (fp8 block quantization only)");
        std::string fmt = q.optional<std::string>("fmt", "e4m3");
        DS_CHECK(fmt == "e4m3", "config.json: quantization_config.fmt '", fmt,
                 "' is not supported (e4m3)");
        c.quant.fp8 = true;
        auto bs = it->find("weight_block_size");
        DS_CHECK(bs != it->end() && bs->is_array() && bs->size() == 2 &&
                     (*bs)[0].is_number_integer() && (*bs)[1].is_number_integer(),
                 "config.json: quantization_config.weight_block_size must be [n, k]");
        c.quant.block_n = (*bs)[0].get<int>();
        c.quant.block_k = (*bs)[1].get<int>();
        DS_CHECK(c.quant.block_n > 0 && c.quant.block_k > 0,
                 "config.json: quantization_config.weight_block_size must be positive");
        std::string scale_fmt = q.optional<std::string>("scale_fmt", "");
        DS_CHECK(scale_fmt.empty() || scale_fmt == "ue8m0",
                 "config.json: quantization_config.scale_fmt '", scale_fmt, "' is not supported");
        c.quant.ue8m0_scales = scale_fmt == "ue8m0";
    }

    // Consistency.
    positive(c.vocab_size, "vocab_size");
    positive(c.hidden_size, "hidden_size");
    positive(c.num_hidden_layers, "num_hidden_layers");
    positive(c.num_attention_heads, "num_attention_heads");
    positive(c.kv_lora_rank, "kv_lora_rank");
    positive(c.qk_nope_head_dim, "qk_nope_head_dim");
    positive(c.qk_rope_head_dim, "qk_rope_head_dim");
    positive(c.v_head_dim, "v_head_dim");
    positive(c.max_position_embeddings, "max_position_embeddings");
    DS_CHECK(c.q_lora_rank >= 0, "config.json: field 'q_lora_rank' must not be negative");
    DS_CHECK(c.qk_rope_head_dim % 2 == 0,
             "config.json: field 'qk_rope_head_dim' must be even, got ", c.qk_rope_head_dim);
    DS_CHECK(kv_heads == c.num_attention_heads, "config.json: field 'num_key_value_heads' (",
             kv_heads, ") must equal num_attention_heads (", c.num_attention_heads,
             "): MLA shares one latent across all heads");
    DS_CHECK(c.first_k_dense_replace >= 0 && c.first_k_dense_replace <= c.num_hidden_layers,
             "config.json: field 'first_k_dense_replace' (", c.first_k_dense_replace,
             ") must be between 0 and num_hidden_layers");
    // Every released DeepSeek-V3/V3.2 config has 1, and transformers ignores the field; refusing
    // other values is safer than guessing which layers they would make MoE.
    DS_CHECK(c.moe_layer_freq == 1, "config.json: field 'moe_layer_freq' must be 1, got ",
             c.moe_layer_freq);
    bool has_moe = false;
    for (int i = 0; i < c.num_hidden_layers + c.num_nextn_predict_layers; ++i) {
        has_moe = has_moe || c.is_moe_layer(i);
    }
    bool has_dense = false;
    for (int i = 0; i < c.num_hidden_layers + c.num_nextn_predict_layers; ++i) {
        has_dense = has_dense || !c.is_moe_layer(i);
    }
    if (has_dense) {
        positive(c.intermediate_size, "intermediate_size");
    }
    if (has_moe) {
        positive(c.n_routed_experts, "n_routed_experts");
        positive(c.num_experts_per_tok, "num_experts_per_tok");
        positive(c.moe_intermediate_size, "moe_intermediate_size");
        positive(c.n_group, "n_group");
        DS_CHECK(c.n_shared_experts >= 0,
                 "config.json: field 'n_shared_experts' must not be negative");
        DS_CHECK(c.n_routed_experts % c.n_group == 0, "config.json: field 'n_group' (", c.n_group,
                 ") must divide n_routed_experts (", c.n_routed_experts, ")");
        DS_CHECK(c.n_routed_experts / c.n_group >= 2, "config.json: field 'n_group' (", c.n_group,
                 ") leaves fewer than 2 experts per group; group scores sum the top 2");
        DS_CHECK(c.topk_group >= 1 && c.topk_group <= c.n_group,
                 "config.json: field 'topk_group' (", c.topk_group,
                 ") must be between 1 and n_group (", c.n_group, ")");
        DS_CHECK(c.num_experts_per_tok <= c.topk_group * (c.n_routed_experts / c.n_group),
                 "config.json: field 'num_experts_per_tok' (", c.num_experts_per_tok,
                 ") exceeds the experts in topk_group groups");
    }
    if (c.sparse_attention) {
        positive(c.index_n_heads, "index_n_heads");
        positive(c.index_head_dim, "index_head_dim");
        positive(c.index_topk, "index_topk");
        DS_CHECK(c.index_head_dim >= c.qk_rope_head_dim, "config.json: field 'index_head_dim' (",
                 c.index_head_dim, ") must be at least qk_rope_head_dim (", c.qk_rope_head_dim,
                 ")");
        DS_CHECK(c.q_lora_rank > 0,
                 "config.json: field 'q_lora_rank' must be set for deepseek_v32: "
                 "the indexer reads the compressed query");
    }
    if (c.rope_scaling.yarn) {
        DS_CHECK(c.rope_scaling.factor >= 1.0,
                 "config.json: field 'rope_scaling.factor' must be >= 1");
        positive(c.rope_scaling.original_max_position_embeddings,
                 "rope_scaling.original_max_position_embeddings");
    }
    DS_CHECK(c.num_nextn_predict_layers >= 0 && c.num_nextn_predict_layers <= 1,
             "config.json: field 'num_nextn_predict_layers' must be 0 or 1, got ",
             c.num_nextn_predict_layers);
    return c;
}

ModelConfig ModelConfig::load(const std::filesystem::path& dir, const std::string& overrides) {
    auto path = dir / "config.json";
    Json json = Json::parse(read_file(path), nullptr, false);
    DS_CHECK(!json.is_discarded(), path.string(), ": not valid JSON");
    return from_json(apply_overrides(std::move(json), overrides));
}

bool ModelConfig::is_moe_layer(int layer) const {
    return n_routed_experts > 0 && layer >= first_k_dense_replace;
}

double ModelConfig::softmax_scale() const {
    double scale = 1.0 / std::sqrt(static_cast<double>(qk_head_dim()));
    if (rope_scaling.yarn && rope_scaling.mscale_all_dim != 0.0) {
        double m = yarn_mscale(rope_scaling.factor, rope_scaling.mscale_all_dim);
        scale *= m * m;
    }
    return scale;
}

}  // namespace dsserve::model
