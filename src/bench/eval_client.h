// What the accuracy harnesses need from a server, done the way SGLang's frontend client does it
// (spec §7): GET /get_model_info must answer 200 first; when all prompts share a prefix longer
// than 64 characters, one /generate with max_new_tokens 0 warms the prefix cache; then every
// prompt is one non-streamed /generate, `parallel` at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "bench/http_client.h"
#include "core/json.h"

namespace dsserve::bench {

struct GenerateResult {
    bool success = false;
    std::string error;
    std::string text;
    std::int64_t completion_tokens = 0;
};

// Longest common prefix of all prompts, cut back to a whole UTF-8 character.
std::string common_prefix(const std::vector<std::string>& prompts);

// Throws Error when /get_model_info does not answer 200 (no server there).
void check_server(const Url& url);

// Runs the prompts (same sampling_params each) and returns one result per prompt, in order.
// Failed requests are results with success == false; they never throw. A request fails when
// the server sends nothing for `timeout` (the responses are not streamed, so that is the time
// to the whole answer).
std::vector<GenerateResult> generate_all(const Url& url, const std::vector<std::string>& prompts,
                                         const Json& sampling_params, int parallel,
                                         bool show_progress,
                                         std::chrono::seconds timeout = std::chrono::seconds(600));

}  // namespace dsserve::bench
