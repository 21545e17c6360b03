// The three kinds of endpoint the benchmark drives, the request body it sends to each (spec
// §6.1, as SGLang's bench_serving builds them) and the reading of each response into one
// RequestOutput: time to first token, inter-token latencies, generated text, output length.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bench/sse.h"
#include "core/json.h"

namespace dsserve::bench {

using Clock = std::chrono::steady_clock;

enum class Backend {
    kGenerate,     // sglang, sglang-native, dsserve: POST /generate
    kCompletions,  // sglang-oai, openai, vllm: POST /v1/completions
    kChat,         // sglang-oai-chat, openai-chat, vllm-chat: POST /v1/chat/completions
};

// Throws Error naming the accepted names for anything else.
Backend parse_backend(std::string_view name);
std::string_view endpoint_path(Backend backend);
// Backends whose server also answers /get_server_info (for Accept length).
bool is_sglang_backend(std::string_view name);

struct RequestOptions {
    std::string model;                 // "model" field of the OpenAI bodies
    bool stream = true;                // false with --disable-stream
    bool ignore_eos = true;            // false with --disable-ignore-eos
    Json extra_body = Json::object();  // --extra-request-body, merged over the top level
};

Json build_request_body(Backend backend, const std::string& prompt, std::int64_t output_len,
                        const RequestOptions& options);

// What one request measured. Failed requests keep their error and are left out of every figure.
struct RequestOutput {
    bool success = false;
    std::string error;
    std::string generated_text;
    std::int64_t prompt_len = 0;
    std::int64_t output_len = 0;
    double start_s = 0.0;    // send time, seconds after the benchmark started
    double ttft_s = 0.0;     // send -> first counted chunk
    double latency_s = 0.0;  // send -> last line of the response
    std::vector<double> itl_s;
};

// Reads one response as it arrives. Lines are parsed as bench_serving parses them; in addition,
// anything bench_serving would crash on or silently accept as success is a failure here: a
// non-200 status, a line that is not JSON, an error event inside the stream, and a stream that
// ends before "data: [DONE]".
class ResponseReader {
public:
    ResponseReader(Backend backend, bool stream, std::int64_t requested_output_len,
                   Clock::time_point sent);

    void on_status(int status, std::string_view reason);
    void on_data(std::string_view data, Clock::time_point now);
    // transport_error: empty when the HTTP exchange completed.
    RequestOutput finish(const std::string& transport_error, Clock::time_point now);

private:
    void on_line(std::string_view line, Clock::time_point now);
    void on_event(const Json& event, Clock::time_point now);
    void count_chunk(Clock::time_point now);
    void fail(std::string error);
    void read_whole_body(Clock::time_point now);

    Backend backend_;
    bool stream_;
    Clock::time_point sent_;
    Clock::time_point last_chunk_;
    Clock::time_point last_line_;
    int status_ = 0;
    std::string reason_;
    std::string body_;  // non-stream body, or the start of an error body
    LineSplitter lines_;
    bool saw_done_ = false;
    bool got_first_ = false;
    std::int64_t last_output_len_ = 0;
    RequestOutput out_;
};

}  // namespace dsserve::bench
