// The HTTP routes: OpenAI-compatible /v1/chat/completions, /v1/completions and /v1/models,
// SGLang's native /generate and operational endpoints, and /metrics. Requests become native
// structs and token ids here, on the HTTP threads; the engine thread sees only ids.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "chat/chat_template.h"
#include "runtime/engine.h"
#include "server/http.h"
#include "server/metrics.h"
#include "server/server_args.h"
#include "tokenizer/tokenizer.h"

namespace dsserve::server {

struct ServerContext {
    ServerArgs args;
    runtime::Engine* engine = nullptr;
    const tokenizer::Tokenizer* tokenizer = nullptr;
    std::unique_ptr<chat::ChatPromptBuilder> prompt_builder;
    std::string reasoning_parser;  // "" = none
    std::string tool_parser;       // "" = none
    bool speciale = false;
    std::int64_t context_length = 0;
    std::string model_name;
    Json generation_defaults =
        Json::object();  // temperature, top_p, ... from generation_config.json
    std::unique_ptr<Metrics> metrics;
    std::atomic<bool> ready{false};
    double startup_seconds = 0.0;
    // Web assets for "/" and "/static/...", when the build embeds them.
    std::function<bool(const std::string& path, std::string& body, std::string& content_type)> web;
};

class Api {
public:
    explicit Api(ServerContext& ctx);
    void handle(HttpRequest request, std::shared_ptr<Responder> responder);

private:
    ServerContext& ctx_;
};

// 32 hex digits of a fresh uuid4, as SGLang's request ids.
std::string new_request_id();

}  // namespace dsserve::server
