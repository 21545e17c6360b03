#include "cli/model_options.h"

#include <charconv>

#include "cli/model_path.h"
#include "core/error.h"

namespace dsserve::cli {

void ModelFlags::add_to(CLI::App* cmd) {
    cmd->add_option("--model-path,--model", model_path,
                    "Checkpoint directory (default: the embedded tiny model)");
    cmd->add_option("--json-model-override-args", override_args,
                    "JSON object overriding config.json fields, e.g. '{\"num_hidden_layers\": 8}'");
    cmd->add_option("--load-format", load_format, "auto (safetensors) or dummy (random weights)")
        ->capture_default_str();
    cmd->add_option("--device", device, "cpu, cuda or cuda:N")->capture_default_str();
    cmd->add_option("--precision", precision,
                    "auto (block-FP8 linear layers on a GPU, as the checkpoint stores them) or "
                    "fp32 (every weight in float32, the CPU backend's arithmetic)")
        ->capture_default_str();
    cmd->add_option("--kv-cache-dtype", kv_cache_dtype,
                    "auto (bf16 on a GPU, fp32 on the CPU or with --precision fp32), bf16 or fp32")
        ->capture_default_str();
    cmd->add_option("--dummy-seed", dummy_seed, "Seed of --load-format dummy weights");
    cmd->add_option("--threads", threads, "CPU threads (default: all cores)");
}

runtime::ModelOptions ModelFlags::resolve() const {
    runtime::ModelOptions o;
    o.model_path = resolve_model_path(model_path);
    o.override_args = override_args;
    o.load_format = load_format;
    o.seed = dummy_seed;
    o.backend.device = device;
    o.backend.num_threads = threads;
    o.backend.precision = precision;
    o.kv_cache_dtype = kv_cache_dtype;
    return o;
}

std::vector<std::int32_t> parse_id_list(const std::string& text, const char* flag) {
    std::vector<std::int32_t> ids;
    std::size_t pos = 0;
    while (pos <= text.size()) {
        std::size_t end = text.find(',', pos);
        if (end == std::string::npos) {
            end = text.size();
        }
        std::string item = text.substr(pos, end - pos);
        while (!item.empty() && item.front() == ' ') {
            item.erase(item.begin());
        }
        while (!item.empty() && item.back() == ' ') {
            item.pop_back();
        }
        std::int32_t value = 0;
        auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), value);
        DS_CHECK(
            !item.empty() && ec == std::errc() && ptr == item.data() + item.size() && value >= 0,
            flag, ": '", item, "' is not a token id");
        ids.push_back(value);
        pos = end + 1;
    }
    return ids;
}

}  // namespace dsserve::cli
