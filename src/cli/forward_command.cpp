#include <memory>

#include "cli/commands.h"
#include "cli/model_options.h"
#include "core/error.h"
#include "core/npy.h"

namespace dsserve::cli {

void add_forward_command(CLI::App& app) {
    struct Args {
        ModelFlags model;
        std::string input_ids;
        std::string out;
        bool incremental = false;
        bool mtp = false;
    };
    auto args = std::make_shared<Args>();
    auto* cmd = app.add_subcommand(
        "forward", "Write float32 logits of every position of --input-ids as a NumPy .npy file");
    args->model.add_to(cmd);
    cmd->add_option("--input-ids", args->input_ids, "Comma-separated token ids")->required();
    cmd->add_option("--out", args->out, "Output .npy file, shape [tokens, vocab]")->required();
    cmd->add_flag("--incremental", args->incremental,
                  "Feed one token at a time through the cache instead of one prefill");
    cmd->add_flag(
        "--mtp", args->mtp,
        "Also write <out>.mtp.npy: MTP logits at positions 0..n-2 (input: hidden state at i "
        "and token i+1)");
    cmd->callback([args] {
        auto ids = parse_id_list(args->input_ids, "--input-ids");
        runtime::LoadedModel loaded(args->model.resolve());
        auto& model = loaded.model();
        const auto& config = loaded.config();
        for (auto id : ids) {
            DS_CHECK(id < config.vocab_size, "--input-ids: ", id, " is outside the vocabulary");
        }
        const auto n = static_cast<std::int32_t>(ids.size());
        runtime::Sequence seq(model, n);
        model::Tensor logits(n, config.vocab_size);
        model::Tensor hidden(n, config.hidden_size);
        if (args->incremental) {
            for (std::int32_t i = 0; i < n; ++i) {
                auto r = seq.feed(
                    std::span<const std::int32_t>(&ids[static_cast<std::size_t>(i)], 1), true);
                std::copy_n(r.logits.row(0), config.vocab_size, logits.row(i));
                std::copy_n(model.ops().to_host(r.hidden).row(0), config.hidden_size,
                            hidden.row(i));
            }
        } else {
            auto r = seq.feed(ids, true);
            logits = std::move(r.logits);
            hidden = model.ops().to_host(r.hidden);
        }
        write_npy(args->out, logits.data, {n, config.vocab_size});
        if (args->mtp) {
            DS_CHECK(model.has_mtp(), "--mtp: the checkpoint has no MTP layer");
            DS_CHECK(n >= 2, "--mtp needs at least two input ids");
            model::ForwardBatch batch;
            batch.tokens.assign(ids.begin() + 1, ids.end());
            batch.seqs.push_back({0, n - 1, seq.slots()});
            batch.all_logits = true;
            model::Tensor h(n - 1, config.hidden_size);
            std::copy_n(hidden.data.begin(), (n - 1) * config.hidden_size, h.data.begin());
            model.ops().to_device(h);
            auto r = model.mtp_forward(batch, h, seq.cache());
            write_npy(args->out + ".mtp.npy", r.logits.data, {n - 1, config.vocab_size});
        }
    });
}

}  // namespace dsserve::cli
