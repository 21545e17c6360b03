#include "bench/backend.h"

#include <algorithm>

#include "core/error.h"

namespace dsserve::bench {

namespace {

double seconds(Clock::duration d) {
    return std::chrono::duration<double>(d).count();
}

// Error messages quote at most this much of a server's body or a bad line.
constexpr std::size_t kQuoteBytes = 300;

std::string quote(std::string_view s) {
    if (s.size() <= kQuoteBytes) {
        return std::string(s);
    }
    return str_cat(s.substr(0, kQuoteBytes), "...");
}

// The message of {"error": {"message": ...}} or {"error": "..."}, else the whole value.
std::string error_message(const Json& error) {
    if (error.is_object() && error.contains("message") && error["message"].is_string()) {
        return error["message"].get<std::string>();
    }
    if (error.is_string()) {
        return error.get<std::string>();
    }
    return error.dump();
}

const Json* first_choice(const Json& event) {
    auto it = event.find("choices");
    if (it == event.end() || !it->is_array() || it->empty() || !(*it)[0].is_object()) {
        return nullptr;
    }
    return &(*it)[0];
}

std::string string_or_empty(const Json& obj, const char* key) {
    auto it = obj.find(key);
    return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// usage.completion_tokens when the event carries it, else fallback.
std::int64_t usage_completion_tokens(const Json& event, std::int64_t fallback) {
    auto usage = event.find("usage");
    if (usage == event.end() || !usage->is_object()) {
        return fallback;
    }
    auto tokens = usage->find("completion_tokens");
    return tokens != usage->end() && tokens->is_number_integer() ? tokens->get<std::int64_t>()
                                                                 : fallback;
}

}  // namespace

Backend parse_backend(std::string_view name) {
    if (name == "sglang" || name == "sglang-native" || name == "dsserve") {
        return Backend::kGenerate;
    }
    if (name == "sglang-oai" || name == "openai" || name == "vllm") {
        return Backend::kCompletions;
    }
    if (name == "sglang-oai-chat" || name == "openai-chat" || name == "vllm-chat") {
        return Backend::kChat;
    }
    fail("unknown backend '", name,
         "' (expected sglang, dsserve, sglang-native, sglang-oai, openai, vllm, sglang-oai-chat, "
         "openai-chat or vllm-chat)");
}

std::string_view endpoint_path(Backend backend) {
    switch (backend) {
        case Backend::kGenerate:
            return "/generate";
        case Backend::kCompletions:
            return "/v1/completions";
        case Backend::kChat:
            return "/v1/chat/completions";
    }
    DS_ASSERT(false, "bad backend ", static_cast<int>(backend));
    return {};
}

bool is_sglang_backend(std::string_view name) {
    return name.substr(0, 6) == "sglang" || name == "dsserve";
}

Json build_request_body(Backend backend, const std::string& prompt, std::int64_t output_len,
                        const RequestOptions& options) {
    Json body = Json::object();
    switch (backend) {
        case Backend::kGenerate:
            body["text"] = prompt;
            body["sampling_params"] = {{"temperature", 0.0},
                                       {"max_new_tokens", output_len},
                                       {"ignore_eos", options.ignore_eos}};
            body["stream"] = options.stream;
            body["return_logprob"] = false;
            body["logprob_start_len"] = -1;
            break;
        case Backend::kCompletions:
            body["model"] = options.model;
            body["prompt"] = prompt;
            body["temperature"] = 0.0;
            body["best_of"] = 1;
            body["max_tokens"] = output_len;
            body["stream"] = options.stream;
            body["ignore_eos"] = options.ignore_eos;
            break;
        case Backend::kChat:
            body["model"] = options.model;
            body["messages"] = Json::array({{{"role", "user"}, {"content", prompt}}});
            body["temperature"] = 0.0;
            body["max_completion_tokens"] = output_len;
            body["stream"] = options.stream;
            body["ignore_eos"] = options.ignore_eos;
            break;
    }
    // Python's {**payload, **extra}: top-level keys of the extra body replace ours.
    for (const auto& [key, value] : options.extra_body.items()) {
        body[key] = value;
    }
    return body;
}

ResponseReader::ResponseReader(Backend backend, bool stream, std::int64_t requested_output_len,
                               Clock::time_point sent)
    : backend_(backend), stream_(stream), sent_(sent), last_chunk_(sent), last_line_(sent) {
    out_.output_len = requested_output_len;
}

void ResponseReader::fail(std::string error) {
    if (out_.error.empty()) {
        out_.error = std::move(error);
    }
}

void ResponseReader::on_status(int status, std::string_view reason) {
    status_ = status;
    reason_ = std::string(reason);
}

void ResponseReader::on_data(std::string_view data, Clock::time_point now) {
    if (status_ != 200 || !stream_) {
        // An error body is kept only for the message; a non-stream body whole.
        if (stream_ && body_.size() >= kQuoteBytes) {
            return;
        }
        body_.append(data);
        return;
    }
    if (!out_.error.empty()) {
        return;
    }
    lines_.feed(data, [&](std::string_view line) { on_line(line, now); });
}

void ResponseReader::on_line(std::string_view line, Clock::time_point now) {
    if (!out_.error.empty()) {
        return;
    }
    last_line_ = now;
    const std::string_view payload = sse_payload(line);
    if (payload == "[DONE]") {
        saw_done_ = true;
        return;
    }
    if (saw_done_) {
        return fail("malformed stream: data after [DONE]");
    }
    Json event = Json::parse(payload, nullptr, /*allow_exceptions=*/false);
    if (event.is_discarded() || !event.is_object()) {
        return fail(str_cat("malformed stream: ", quote(payload)));
    }
    on_event(event, now);
}

void ResponseReader::count_chunk(Clock::time_point now) {
    if (!got_first_) {
        got_first_ = true;
        out_.ttft_s = seconds(now - sent_);
    } else {
        out_.itl_s.push_back(seconds(now - last_chunk_));
    }
    last_chunk_ = now;
}

void ResponseReader::on_event(const Json& event, Clock::time_point now) {
    if (auto err = event.find("error"); err != event.end() && !err->is_null()) {
        return fail(str_cat("server error in stream: ", error_message(*err)));
    }
    switch (backend_) {
        case Backend::kGenerate: {
            const std::string text = string_or_empty(event, "text");
            if (text.empty()) {
                return;
            }
            auto meta = event.find("meta_info");
            if (meta == event.end() || !meta->is_object() || !meta->contains("completion_tokens") ||
                !(*meta)["completion_tokens"].is_number_integer()) {
                return fail("malformed stream: event without meta_info.completion_tokens");
            }
            const std::int64_t output_len = (*meta)["completion_tokens"].get<std::int64_t>();
            out_.generated_text = text;  // /generate streams the cumulative text
            out_.output_len = output_len;
            if (!got_first_) {
                count_chunk(now);
            } else {
                // One ITL entry per token: the gap is shared evenly by the tokens the chunk added.
                const std::int64_t added = output_len - last_output_len_;
                if (added <= 0) {
                    return;
                }
                const double each = seconds(now - last_chunk_) / static_cast<double>(added);
                out_.itl_s.insert(out_.itl_s.end(), static_cast<std::size_t>(added), each);
                last_chunk_ = now;
            }
            last_output_len_ = output_len;
            return;
        }
        case Backend::kCompletions: {
            if (const Json* choice = first_choice(event)) {
                const std::string text = string_or_empty(*choice, "text");
                if (!text.empty()) {
                    count_chunk(now);
                    out_.generated_text += text;
                }
            }
            out_.output_len = usage_completion_tokens(event, out_.output_len);
            return;
        }
        case Backend::kChat: {
            if (const Json* choice = first_choice(event)) {
                auto delta = choice->find("delta");
                if (delta != choice->end() && delta->is_object()) {
                    // reasoning_content is not counted: TTFT is the time to the first answer token.
                    const std::string content = string_or_empty(*delta, "content");
                    if (!content.empty()) {
                        count_chunk(now);
                        out_.generated_text += content;
                    }
                }
            }
            out_.output_len = usage_completion_tokens(event, out_.output_len);
            return;
        }
    }
}

void ResponseReader::read_whole_body(Clock::time_point now) {
    Json body = Json::parse(body_, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded() || !body.is_object()) {
        return fail(str_cat("malformed response: ", quote(body_)));
    }
    if (auto err = body.find("error"); err != body.end() && !err->is_null()) {
        return fail(str_cat("server error: ", error_message(*err)));
    }
    out_.ttft_s = out_.latency_s = seconds(now - sent_);
    switch (backend_) {
        case Backend::kGenerate: {
            out_.generated_text = string_or_empty(body, "text");
            auto meta = body.find("meta_info");
            if (meta != body.end() && meta->is_object() && meta->contains("completion_tokens") &&
                (*meta)["completion_tokens"].is_number_integer()) {
                out_.output_len = (*meta)["completion_tokens"].get<std::int64_t>();
            }
            return;
        }
        case Backend::kCompletions:
            if (const Json* choice = first_choice(body)) {
                out_.generated_text = string_or_empty(*choice, "text");
            }
            out_.output_len = usage_completion_tokens(body, out_.output_len);
            return;
        case Backend::kChat:
            if (const Json* choice = first_choice(body)) {
                auto message = choice->find("message");
                if (message != choice->end() && message->is_object()) {
                    out_.generated_text = string_or_empty(*message, "content");
                }
            }
            out_.output_len = usage_completion_tokens(body, out_.output_len);
            return;
    }
}

RequestOutput ResponseReader::finish(const std::string& transport_error, Clock::time_point now) {
    if (status_ != 0 && status_ != 200) {
        fail(str_cat("HTTP ", status_, " ", reason_, body_.empty() ? "" : ": ", quote(body_)));
    } else if (!transport_error.empty()) {
        fail(transport_error);
    } else if (stream_) {
        lines_.finish([&](std::string_view line) { on_line(line, now); });
        if (!saw_done_) {
            fail("malformed stream: ended before data: [DONE]");
        }
        out_.latency_s = seconds(last_line_ - sent_);
    } else {
        read_whole_body(now);
    }
    out_.success = out_.error.empty();
    return std::move(out_);
}

}  // namespace dsserve::bench
