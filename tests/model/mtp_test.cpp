// The MTP module against the DeepSeek-V3 report's equations (§2.2), written out plainly:
//   h'_i = M [RMSNorm(Emb(t_{i+1})); RMSNorm(h_i)],  h''_i = TRM(h'_i),  P = OutHead(h''_i)
// with OutHead = shared_head.head(shared_head.norm(.)). The MTP decoder layer's output
// projections are set to zero by hand, so TRM is the identity and the expected logits follow from
// the other weights alone.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "backend/backend.h"
#include "core/file.h"
#include "model/deepseek_v32.h"
#include "model/make_model.h"
#include "runtime/model_runner.h"

namespace dsserve::model {
namespace {

namespace fs = std::filesystem;

std::vector<double> rms_norm(const float* x, const Tensor& g, std::int64_t n, double eps) {
    double ss = 0.0;
    for (std::int64_t i = 0; i < n; ++i) {
        ss += static_cast<double>(x[i]) * x[i];
    }
    double inv = 1.0 / std::sqrt(ss / static_cast<double>(n) + eps);
    std::vector<double> out(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) {
        out[i] = g.data[i] * x[i] * inv;
    }
    return out;
}

TEST(MtpTest, MatchesTheReportsEquationsWithIdentityBlock) {
    fs::path dir = fs::temp_directory_path() / "dsserve_mtp_test";
    fs::remove_all(dir);
    MakeModelOptions o;
    o.output = dir;
    o.config = preset_config("tiny", 2);
    o.config["vocab_size"] = 1000;
    o.dtype = CheckpointDType::kBf16;
    o.seed = 11;
    make_model(o);

    auto config = ModelConfig::load(dir);
    ThreadPool pool(2);
    auto weights = load_weights(config, dir, {}, pool);
    ASSERT_TRUE(weights.mtp_loaded);
    const std::string p = layer_prefix(config.num_hidden_layers);
    // Zero the residual branches of the MTP block: attention output and every expert's output.
    auto zero = [&](const std::string& name) {
        Tensor t = weights.store.take(name);
        std::fill(t.data.begin(), t.data.end(), 0.0f);
        weights.store.put(name, std::move(t));
    };
    zero(p + "self_attn.o_proj.weight");
    zero(p + "mlp.shared_experts.down_proj.weight");
    for (int e = 0; e < config.n_routed_experts; ++e) {
        zero(p + "mlp.experts." + std::to_string(e) + ".down_proj.weight");
    }
    // Copies of what the plain evaluation needs, before the model takes the store.
    Tensor embed = weights.store.at(p + "embed_tokens.weight");
    Tensor enorm = weights.store.at(p + "enorm.weight");
    Tensor hnorm = weights.store.at(p + "hnorm.weight");
    Tensor eh = weights.store.at(p + "eh_proj.weight");
    Tensor norm = weights.store.at(p + "shared_head.norm.weight");
    Tensor head = weights.store.at(p + "shared_head.head.weight");

    auto ops = backend::make_backend({});
    DeepseekV32 model(config, std::move(weights), *ops);
    ASSERT_TRUE(model.has_mtp());

    std::vector<std::int32_t> tokens = {5, 17, 300, 42, 999, 7};
    const auto n = static_cast<std::int32_t>(tokens.size());
    KvCache cache = model.make_cache(n);
    std::vector<std::int32_t> slots(static_cast<std::size_t>(n));
    std::iota(slots.begin(), slots.end(), 0);
    ForwardBatch main;
    main.tokens = tokens;
    main.seqs.push_back({0, n, slots});
    main.all_logits = true;
    auto out = model.forward(main, cache);

    ForwardBatch mtp;
    mtp.tokens.assign(tokens.begin() + 1, tokens.end());
    mtp.seqs.push_back({0, n - 1, slots});
    mtp.all_logits = true;
    Tensor hidden(n - 1, config.hidden_size);
    std::copy_n(out.hidden.data.begin(), (n - 1) * config.hidden_size, hidden.data.begin());
    auto mtp_out = model.mtp_forward(mtp, hidden, cache);

    const std::int64_t h = config.hidden_size;
    double worst = 0.0;
    for (std::int32_t i = 0; i + 1 < n; ++i) {
        auto e = rms_norm(embed.row(tokens[static_cast<std::size_t>(i + 1)]), enorm, h,
                          config.rms_norm_eps);
        auto hn = rms_norm(hidden.row(i), hnorm, h, config.rms_norm_eps);
        std::vector<float> x(static_cast<std::size_t>(h));
        for (std::int64_t r = 0; r < h; ++r) {
            double acc = 0.0;
            for (std::int64_t c = 0; c < h; ++c) {
                acc += eh.row(r)[c] * e[c] + eh.row(r)[h + c] * hn[c];
            }
            x[r] = static_cast<float>(acc);
        }
        auto y = rms_norm(x.data(), norm, h, config.rms_norm_eps);
        for (std::int64_t v = 0; v < config.vocab_size; ++v) {
            double logit = 0.0;
            for (std::int64_t c = 0; c < h; ++c) {
                logit += head.row(v)[c] * y[c];
            }
            worst = std::max(worst, std::abs(logit - mtp_out.logits.row(i)[v]));
        }
    }
    EXPECT_LE(worst, 1e-4);
    fs::remove_all(dir);
}

}  // namespace
}  // namespace dsserve::model
