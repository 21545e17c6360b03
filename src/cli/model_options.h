// Options every model-running command shares, with SGLang's spellings.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "runtime/model_runner.h"

namespace dsserve::cli {

struct ModelFlags {
    std::string model_path;
    std::string override_args;
    std::string load_format = "auto";
    std::string device = "cpu";
    std::string precision = "auto";
    std::string kv_cache_dtype = "auto";
    std::uint64_t dummy_seed = 0;
    std::size_t threads = 0;

    void add_to(CLI::App* cmd);
    runtime::ModelOptions resolve() const;  // makes the default model if no path was given
};

// "1,2,3" -> {1, 2, 3}; an Error names the bad item.
std::vector<std::int32_t> parse_id_list(const std::string& text, const char* flag);

}  // namespace dsserve::cli
