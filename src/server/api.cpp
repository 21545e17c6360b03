#include "server/api.h"

#include <cmath>
#include <ctime>
#include <mutex>
#include <random>

#include "chat/chat_request.h"
#include "core/error.h"
#include "core/log.h"
#include "core/pyjson.h"
#include "parsers/tool_parser.h"
#include "server/choice.h"

namespace dsserve::server {
namespace {

using Clock = std::chrono::steady_clock;

// A client error with its HTTP status: becomes the error body of the route's family.
struct ApiError : Error {
    int status;
    std::string type;
    ApiError(int s, const std::string& message, std::string t = "BadRequestError")
        : Error(message), status(s), type(std::move(t)) {}
};

[[noreturn]] void bad_request(const std::string& message) {
    throw ApiError(400, message);
}

std::string dump(const Json& j) {
    return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string py_float(double v) {
    return py_float_repr(v);
}

std::int64_t unix_time() {
    return static_cast<std::int64_t>(std::time(nullptr));
}

Json openai_error(int status, const std::string& message, const std::string& type) {
    return Json{{"object", "error"},
                {"message", message},
                {"type", type},
                {"param", nullptr},
                {"code", status}};
}

// ---------------------------------------------------------------------------------------------
// Reading request fields with type checks.

class Fields {
public:
    explicit Fields(const Json& body) : body_(body) {}
    const Json* get(const char* key) const {
        auto it = body_.find(key);
        return it == body_.end() || it->is_null() ? nullptr : &*it;
    }
    std::optional<double> number(const char* key) const {
        const Json* v = get(key);
        if (!v) {
            return std::nullopt;
        }
        if (!v->is_number()) {
            bad_request(std::string(key) + ": Input should be a valid number");
        }
        return v->get<double>();
    }
    std::optional<std::int64_t> integer(const char* key) const {
        const Json* v = get(key);
        if (!v) {
            return std::nullopt;
        }
        if (!v->is_number_integer() &&
            !(v->is_number_float() && std::floor(v->get<double>()) == v->get<double>())) {
            bad_request(std::string(key) + ": Input should be a valid integer");
        }
        return v->get<std::int64_t>();
    }
    std::optional<bool> boolean(const char* key) const {
        const Json* v = get(key);
        if (!v) {
            return std::nullopt;
        }
        if (!v->is_boolean()) {
            bad_request(std::string(key) + ": Input should be a valid boolean");
        }
        return v->get<bool>();
    }
    std::vector<std::string> strings(const char* key) const {
        const Json* v = get(key);
        std::vector<std::string> out;
        if (!v) {
            return out;
        }
        if (v->is_string()) {
            out.push_back(v->get<std::string>());
        } else if (v->is_array()) {
            for (const auto& s : *v) {
                if (!s.is_string()) {
                    bad_request(std::string(key) +
                                ": Input should be a valid string or list of strings");
                }
                out.push_back(s.get<std::string>());
            }
        } else {
            bad_request(std::string(key) + ": Input should be a valid string or list of strings");
        }
        return out;
    }
    std::vector<std::int32_t> ids(const char* key) const {
        const Json* v = get(key);
        std::vector<std::int32_t> out;
        if (!v) {
            return out;
        }
        if (!v->is_array()) {
            bad_request(std::string(key) + ": Input should be a valid list of integers");
        }
        for (const auto& x : *v) {
            if (!x.is_number_integer()) {
                bad_request(std::string(key) + ": Input should be a valid list of integers");
            }
            out.push_back(x.get<std::int32_t>());
        }
        return out;
    }

private:
    const Json& body_;
};

// Everything a generation needs besides the prompt, validated as SGLang validates it.
struct GenParams {
    runtime::SamplingParams sampling;
    runtime::StopOptions stop;
    std::optional<std::uint64_t> seed;
    std::vector<std::string> stop_strings;
    bool no_stop_trim = false;
    bool skip_special_tokens = true;
    bool max_tokens_given = false;
    int n = 1;
    bool logprobs = false;
    int top_logprobs = 0;
};

void read_sampling(const Fields& f, GenParams& g, std::int64_t vocab, const char* max_key,
                   const char* max_key2, const char* min_key) {
    auto& s = g.sampling;
    if (auto v = f.number("temperature")) {
        if (!std::isfinite(*v) || *v < 0) {
            bad_request("temperature must be a non-negative finite number, got " + py_float(*v) +
                        ".");
        }
        s.temperature = static_cast<float>(*v);
    }
    if (auto v = f.number("top_p")) {
        if (!(*v > 0 && *v <= 1)) {
            bad_request("top_p must be in (0, 1], got " + py_float(*v) + ".");
        }
        s.top_p = static_cast<float>(*v);
    }
    if (auto v = f.integer("top_k")) {
        if (*v != -1 && *v < 1) {
            bad_request("top_k must be -1 (disable), or at least 1, got " + std::to_string(*v) +
                        ".");
        }
        s.top_k = static_cast<int>(std::min<std::int64_t>(*v, vocab));
    }
    if (auto v = f.number("min_p")) {
        if (!(*v >= 0 && *v <= 1)) {
            bad_request("min_p must be in [0, 1], got " + py_float(*v) + ".");
        }
        s.min_p = static_cast<float>(*v);
    }
    for (const char* key : {"frequency_penalty", "presence_penalty"}) {
        if (auto v = f.number(key)) {
            if (!(*v >= -2 && *v <= 2)) {
                bad_request(std::string(key) + " must be in [-2, 2], got " + py_float(*v) + ".");
            }
            (std::string(key) == "frequency_penalty" ? s.frequency_penalty : s.presence_penalty) =
                static_cast<float>(*v);
        }
    }
    if (auto v = f.number("repetition_penalty")) {
        if (!(*v > 0 && *v <= 2)) {
            bad_request("repetition_penalty must be in (0, 2], got " + py_float(*v) + ".");
        }
        s.repetition_penalty = static_cast<float>(*v);
    }
    if (const Json* bias = f.get("logit_bias")) {
        if (!bias->is_object()) {
            bad_request("logit_bias: Input should be a valid dictionary");
        }
        for (const auto& [k, v] : bias->items()) {
            char* end = nullptr;
            long id = std::strtol(k.c_str(), &end, 10);
            if (k.empty() || *end != '\0' || id < 0 || id >= vocab) {
                bad_request("logit_bias: token id " + k + " is not in the vocabulary (size " +
                            std::to_string(vocab) + ").");
            }
            if (!v.is_number()) {
                bad_request("logit_bias: values must be numbers");
            }
            s.logit_bias.emplace_back(static_cast<std::int32_t>(id), v.get<float>());
        }
    }
    if (auto v = f.integer("seed")) {
        g.seed = static_cast<std::uint64_t>(*v);
    }
    std::optional<std::int64_t> max = f.integer(max_key);
    if (!max && max_key2) {
        max = f.integer(max_key2);
    }
    if (max) {
        if (*max < 0) {
            bad_request(std::string(max_key) + " must be at least 0, got " + std::to_string(*max) +
                        ".");
        }
        g.stop.max_new_tokens = static_cast<int>(std::min<std::int64_t>(*max, 1 << 30));
        g.max_tokens_given = true;
    }
    if (auto v = f.integer(min_key)) {
        if (*v < 0 || (g.max_tokens_given && *v > g.stop.max_new_tokens)) {
            bad_request("min_new_tokens must be in [0, max_new_tokens], got " + std::to_string(*v) +
                        ".");
        }
        g.stop.min_new_tokens = static_cast<int>(*v);
    }
    g.stop_strings = f.strings("stop");
    g.stop.stop_token_ids = f.ids("stop_token_ids");
    g.stop.ignore_eos = f.boolean("ignore_eos").value_or(false);
    g.no_stop_trim = f.boolean("no_stop_trim").value_or(false);
    g.skip_special_tokens = f.boolean("skip_special_tokens").value_or(true);
    if (auto v = f.integer("n")) {
        if (*v < 1 || *v > 128) {
            bad_request("n must be between 1 and 128, got " + std::to_string(*v) + ".");
        }
        g.n = static_cast<int>(*v);
    }
    for (const char* key : {"regex", "ebnf", "json_schema"}) {
        if (f.get(key)) {
            bad_request(std::string(key) +
                        ": constrained decoding is not supported by dsserve yet.");
        }
    }
    if (s.temperature == 0.0f) {
        s.top_k = 1;  // greedy, as SGLang maps it
    }
}

// ---------------------------------------------------------------------------------------------
// A request in flight: its choices, their streams, and how each kind formats its output.

enum class Kind { kChat, kCompletion, kGenerate };

struct Choice {
    std::string rid;
    int index = 0;
    int prompt_index = 0;
    std::unique_ptr<ChoiceStream> stream;
    parsers::StreamAssembler assembled;
    bool started = false;
    bool finished = false;
    std::string finish_reason;
    Json matched_stop = nullptr;
    std::string abort_message;
    int completion_tokens = 0;
    int cached_tokens = 0;
    int prompt_tokens = 0;
    std::vector<std::int32_t> output_ids;
    Json logprobs = Json::array();
    Clock::time_point last_output;
};

class Job : public std::enable_shared_from_this<Job> {
public:
    Job(ServerContext& ctx, Kind kind, std::shared_ptr<Responder> responder)
        : ctx_(ctx),
          kind_(kind),
          responder_(std::move(responder)),
          id_(new_request_id()),
          created_(unix_time()),
          start_(Clock::now()) {}

    ServerContext& ctx_;
    Kind kind_;
    std::shared_ptr<Responder> responder_;
    std::string id_;
    std::int64_t created_;
    Clock::time_point start_;
    std::string model_ = "default";
    bool stream_ = false;
    bool include_usage_ = false;
    bool continuous_usage_ = false;
    bool batch_ = false;  // /generate with a list input
    bool echo_ = false;
    std::vector<std::string> prompt_texts_;
    std::vector<int> prompt_lengths_;
    std::vector<Choice> choices_;
    int remaining_ = 0;
    bool closed_ = false;

    void submit(std::vector<std::vector<std::int32_t>> prompts, const GenParams& g,
                const std::optional<parsers::OutputParserOptions>& parser) {
        for (std::size_t p = 0; p < prompts.size(); ++p) {
            prompt_lengths_.push_back(static_cast<int>(prompts[p].size()));
            for (int j = 0; j < g.n; ++j) {
                Choice c;
                c.index = static_cast<int>(choices_.size());
                c.prompt_index = static_cast<int>(p);
                c.rid = id_ + (prompts.size() * static_cast<std::size_t>(g.n) > 1
                                   ? "-" + std::to_string(c.index)
                                   : "");
                ChoiceOptions co;
                co.stop = g.stop_strings;
                co.no_stop_trim = g.no_stop_trim;
                co.skip_special_tokens = g.skip_special_tokens;
                co.parser = parser;
                c.stream = std::make_unique<ChoiceStream>(*ctx_.tokenizer, std::move(co));
                c.prompt_tokens = static_cast<int>(prompts[p].size());
                choices_.push_back(std::move(c));
            }
        }
        remaining_ = static_cast<int>(choices_.size());
        if (stream_) {
            responder_->start_stream(200, "text/event-stream");
        }
        auto self = shared_from_this();
        responder_->on_disconnect(
            [self] { self->responder_->post([self] { self->on_disconnect(); }); });
        for (auto& c : choices_) {
            runtime::GenerateRequest r;
            r.rid = c.rid;
            r.input_ids = prompts[static_cast<std::size_t>(c.prompt_index)];
            r.sampling = g.sampling;
            r.stop = g.stop;
            if (g.seed) {
                r.seed = *g.seed + static_cast<std::uint64_t>(c.index % g.n);
            }
            r.return_logprob = g.logprobs;
            r.top_logprobs = g.top_logprobs;
            int index = c.index;
            r.on_output = [self, index](const runtime::RequestOutput& out) {
                self->responder_->post([self, index, out] { self->on_output(index, out); });
            };
            log::debug("submit ", c.rid);
            ctx_.engine->submit(std::move(r));
        }
    }

    void on_disconnect() {
        for (auto& c : choices_) {
            if (!c.finished) {
                ctx_.engine->abort(c.rid);
            }
        }
        closed_ = true;
    }

    void on_output(int index, const runtime::RequestOutput& out) {
        Choice& c = choices_[static_cast<std::size_t>(index)];
        log::debug("output ", c.rid, " tokens ", out.new_tokens.size(), " finished ", out.finished);
        if (c.finished) {
            return;  // e.g. the abort that follows a stop-string match
        }
        auto now = Clock::now();
        if (!out.new_tokens.empty()) {
            if (!c.started) {
                ctx_.metrics->ttft.observe(std::chrono::duration<double>(now - start_).count());
            } else {
                double gap = std::chrono::duration<double>(now - c.last_output).count();
                ctx_.metrics->itl.observe(gap / static_cast<double>(out.new_tokens.size()),
                                          out.new_tokens.size(), gap);
            }
            c.last_output = now;
        }
        c.cached_tokens = out.cached_tokens;
        auto delta = c.stream->push(out.new_tokens);
        if (!c.stream->stopped()) {
            c.completion_tokens += static_cast<int>(out.new_tokens.size());
            c.output_ids.insert(c.output_ids.end(), out.new_tokens.begin(), out.new_tokens.end());
            append_logprobs(c, out);
        } else if (!out.new_tokens.empty()) {
            // The token that completed the stop string still counts as generated.
            c.completion_tokens += static_cast<int>(out.new_tokens.size());
            c.output_ids.insert(c.output_ids.end(), out.new_tokens.begin(), out.new_tokens.end());
        }
        bool done = out.finished || c.stream->stopped();
        if (done) {
            auto tail = c.stream->finish();
            delta.text += tail.text;
            merge(delta.parsed, tail.parsed);
            if (c.stream->stopped()) {
                c.finish_reason = "stop";
                c.matched_stop = *c.stream->matched_stop();
                if (!out.finished) {
                    ctx_.engine->abort(c.rid);
                }
            } else {
                switch (out.reason) {
                    case runtime::FinishReason::kStopToken:
                        c.finish_reason = "stop";
                        c.matched_stop = out.matched_token;
                        break;
                    case runtime::FinishReason::kLength:
                        c.finish_reason = "length";
                        break;
                    case runtime::FinishReason::kAbort:
                    case runtime::FinishReason::kNone:
                        c.finish_reason = "abort";
                        c.abort_message = out.abort_message;
                        break;
                }
            }
        }
        c.assembled.add(delta.parsed);
        if (stream_ && !closed_) {
            stream_delta(c, delta, out);
        }
        if (done) {
            c.finished = true;
            record_finish(c);
            if (--remaining_ == 0) {
                complete();
            }
        }
    }

    static void merge(parsers::ParsedDelta& a, parsers::ParsedDelta& b) {
        a.reasoning_content += b.reasoning_content;
        a.content += b.content;
        for (auto& t : b.tool_calls) {
            a.tool_calls.push_back(std::move(t));
        }
    }

    void append_logprobs(Choice& c, const runtime::RequestOutput& out) {
        for (const auto& lp : out.logprobs) {
            c.logprobs.push_back(logprob_json(lp));
        }
    }

    Json logprob_json(const runtime::TokenLogprob& lp) const {
        auto token_entry = [&](std::int32_t id, float logprob) {
            std::string text = ctx_.tokenizer->token_bytes(id);
            Json bytes = Json::array();
            for (unsigned char ch : text) {
                bytes.push_back(static_cast<int>(ch));
            }
            return Json{{"token", text}, {"bytes", bytes}, {"logprob", logprob}};
        };
        Json e = token_entry(lp.token, lp.logprob);
        Json top = Json::array();
        for (const auto& [id, l] : lp.top) {
            top.push_back(token_entry(id, l));
        }
        e["top_logprobs"] = top;
        return e;
    }

    void record_finish(const Choice& c) {
        auto& m = *ctx_.metrics;
        m.generation_tokens += static_cast<std::uint64_t>(c.completion_tokens);
        if (c.finish_reason == "abort") {
            m.aborted_requests += 1;
        }
        m.cached_tokens += static_cast<std::uint64_t>(c.cached_tokens);
    }

    void send_sse(const Json& j) { responder_->write("data: " + dump(j) + "\n\n"); }

    Json usage() const {
        int prompt = 0, completion = 0, cached = 0;
        for (int p : prompt_lengths_) {
            prompt += p;
        }
        for (const auto& c : choices_) {
            completion += c.completion_tokens;
        }
        for (std::size_t p = 0; p < prompt_lengths_.size(); ++p) {
            for (const auto& c : choices_) {
                if (c.prompt_index == static_cast<int>(p)) {
                    cached += c.cached_tokens;
                    break;
                }
            }
        }
        Json details = nullptr;
        if (ctx_.args.enable_cache_report && cached > 0) {
            details = Json{{"cached_tokens", cached}};
        }
        return Json{{"prompt_tokens", prompt},
                    {"total_tokens", prompt + completion},
                    {"completion_tokens", completion},
                    {"prompt_tokens_details", details},
                    {"reasoning_tokens", 0}};
    }

    std::string final_reason(const Choice& c) const {
        return c.stream->parsing()
                   ? parsers::rewrite_finish_reason(c.finish_reason, c.stream->has_tool_calls())
                   : c.finish_reason;
    }
    Json final_matched(const Choice& c) const {
        return final_reason(c) == "tool_calls" && !stream_ ? Json(nullptr) : c.matched_stop;
    }

    Json chunk_envelope(const char* object) const {
        return Json{{"id", id_}, {"object", object}, {"created", created_}, {"model", model_}};
    }

    void stream_delta(Choice& c, const ChoiceStream::Delta& delta,
                      const runtime::RequestOutput& out) {
        if (kind_ == Kind::kChat) {
            auto chunk = [&](Json d, bool full) {
                Json j = chunk_envelope("chat.completion.chunk");
                j["choices"] = Json::array({Json{{"index", c.index},
                                                 {"delta", std::move(d)},
                                                 {"logprobs", nullptr},
                                                 {"finish_reason", nullptr},
                                                 {"matched_stop", nullptr}}});
                if (full) {
                    j["usage"] = nullptr;
                }
                send_sse(j);
            };
            if (!c.started) {
                c.started = true;
                chunk(Json{{"role", "assistant"}, {"content", ""}, {"reasoning_content", nullptr}},
                      false);
            }
            if (c.stream->parsing()) {
                if (!delta.parsed.reasoning_content.empty()) {
                    chunk(Json{{"reasoning_content", delta.parsed.reasoning_content}}, false);
                }
                if (!delta.parsed.content.empty()) {
                    chunk(Json{{"content", delta.parsed.content}, {"reasoning_content", nullptr}},
                          false);
                }
                for (const auto& t : delta.parsed.tool_calls) {
                    Json call{{"id", t.id ? Json(*t.id) : Json(nullptr)},
                              {"index", t.index},
                              {"type", "function"},
                              {"function",
                               {{"name", t.name ? Json(*t.name) : Json(nullptr)},
                                {"arguments", t.arguments}}}};
                    chunk(Json{{"role", nullptr},
                               {"content", nullptr},
                               {"reasoning_content", nullptr},
                               {"tool_calls", Json::array({call})}},
                          true);
                }
            } else if (!delta.text.empty()) {
                chunk(Json{{"content", delta.text}, {"reasoning_content", nullptr}}, false);
            }
            if (!out.logprobs.empty() && c.logprobs.size() > 0) {
                Json j = chunk_envelope("chat.completion.chunk");
                Json lp = Json::array();
                for (const auto& l : out.logprobs) {
                    lp.push_back(logprob_json(l));
                }
                j["choices"] = Json::array({Json{{"index", c.index},
                                                 {"delta", Json::object()},
                                                 {"logprobs", {{"content", lp}}},
                                                 {"finish_reason", nullptr},
                                                 {"matched_stop", nullptr}}});
                send_sse(j);
            }
            if (c.finish_reason.size() && (out.finished || c.stream->stopped())) {
                Json j = chunk_envelope("chat.completion.chunk");
                j["choices"] = Json::array({Json{{"index", c.index},
                                                 {"delta", {{"reasoning_content", nullptr}}},
                                                 {"logprobs", nullptr},
                                                 {"finish_reason", final_reason(c)},
                                                 {"matched_stop", c.matched_stop}}});
                send_sse(j);
            }
        } else if (kind_ == Kind::kCompletion) {
            bool last = !c.finish_reason.empty();
            if (delta.text.empty() && !last) {
                return;
            }
            std::string text = delta.text;
            if (echo_ && !c.started) {
                text = prompt_texts_[static_cast<std::size_t>(c.prompt_index)] + text;
            }
            c.started = true;
            Json j = chunk_envelope("text_completion");
            j["choices"] =
                Json::array({Json{{"index", c.index},
                                  {"text", text},
                                  {"logprobs", nullptr},
                                  {"finish_reason", last ? Json(c.finish_reason) : Json(nullptr)},
                                  {"matched_stop", last ? c.matched_stop : Json(nullptr)}}});
            j["usage"] = nullptr;
            send_sse(j);
        } else {
            c.started = true;
            Json j = generate_object(c, c.finish_reason.empty());
            if (batch_) {
                j["index"] = c.index;
            }
            send_sse(j);
        }
    }

    Json generate_object(const Choice& c, bool unfinished) const {
        Json finish = nullptr;
        if (!unfinished) {
            if (c.finish_reason == "stop") {
                finish = Json{{"type", "stop"}, {"matched", c.matched_stop}};
            } else if (c.finish_reason == "length") {
                finish = Json{{"type", "length"}, {"length", c.completion_tokens}};
            } else {
                finish = Json{{"type", "abort"}, {"message", c.abort_message}};
            }
        }
        Json meta{{"id", c.rid},
                  {"finish_reason", finish},
                  {"prompt_tokens", c.prompt_tokens},
                  {"completion_tokens", c.completion_tokens},
                  {"cached_tokens", c.cached_tokens},
                  {"e2e_latency", std::chrono::duration<double>(Clock::now() - start_).count()},
                  {"weight_version", ctx_.args.weight_version}};
        if (!c.logprobs.empty()) {
            Json lp = Json::array();
            for (const auto& e : c.logprobs) {
                lp.push_back(Json::array({e["logprob"], nullptr, nullptr}));
            }
            meta["output_token_logprobs"] = lp;
        }
        return Json{{"text", c.stream->text()}, {"output_ids", c.output_ids}, {"meta_info", meta}};
    }

    void complete() {
        auto& m = *ctx_.metrics;
        m.requests += static_cast<std::uint64_t>(choices_.size());
        for (int p : prompt_lengths_) {
            m.prompt_tokens += static_cast<std::uint64_t>(p);
        }
        m.e2e.observe(std::chrono::duration<double>(Clock::now() - start_).count());
        if (closed_) {
            return;
        }
        if (stream_) {
            if (include_usage_ && kind_ != Kind::kGenerate) {
                Json j = chunk_envelope(kind_ == Kind::kChat ? "chat.completion.chunk"
                                                             : "text_completion");
                j["choices"] = Json::array();
                j["usage"] = usage();
                send_sse(j);
            }
            responder_->write("data: [DONE]\n\n");
            responder_->end_stream();
            return;
        }
        Json body;
        if (kind_ == Kind::kChat) {
            body = chunk_envelope("chat.completion");
            Json choices = Json::array();
            for (const auto& c : choices_) {
                Json message;
                if (c.stream->parsing()) {
                    Json parsed = parsers::message_to_json(c.assembled.message());
                    message = Json{{"role", "assistant"},
                                   {"content", parsed["content"]},
                                   {"reasoning_content", parsed["reasoning_content"]},
                                   {"tool_calls", parsed["tool_calls"]}};
                } else {
                    message = Json{{"role", "assistant"},
                                   {"content", c.stream->text()},
                                   {"reasoning_content", nullptr},
                                   {"tool_calls", nullptr}};
                }
                choices.push_back(
                    Json{{"index", c.index},
                         {"message", message},
                         {"logprobs",
                          c.logprobs.empty() ? Json(nullptr) : Json{{"content", c.logprobs}}},
                         {"finish_reason", final_reason(c)},
                         {"matched_stop", final_matched(c)}});
            }
            body["choices"] = choices;
            body["usage"] = usage();
            body["metadata"] = {{"weight_version", ctx_.args.weight_version}};
        } else if (kind_ == Kind::kCompletion) {
            body = chunk_envelope("text_completion");
            Json choices = Json::array();
            for (const auto& c : choices_) {
                Json lp = nullptr;
                if (!c.logprobs.empty()) {
                    Json tokens = Json::array(), token_lp = Json::array(), top = Json::array();
                    for (const auto& e : c.logprobs) {
                        tokens.push_back(e["token"]);
                        token_lp.push_back(e["logprob"]);
                        Json t = Json::object();
                        for (const auto& alt : e["top_logprobs"]) {
                            t[alt["token"].get<std::string>()] = alt["logprob"];
                        }
                        top.push_back(t);
                    }
                    lp = Json{{"text_offset", Json::array()},
                              {"token_logprobs", token_lp},
                              {"tokens", tokens},
                              {"top_logprobs", top}};
                }
                std::string text = c.stream->text();
                if (echo_) {
                    text = prompt_texts_[static_cast<std::size_t>(c.prompt_index)] + text;
                }
                choices.push_back(Json{{"index", c.index},
                                       {"text", text},
                                       {"logprobs", lp},
                                       {"finish_reason", c.finish_reason},
                                       {"matched_stop", c.matched_stop}});
            }
            body["choices"] = choices;
            body["usage"] = usage();
            body["metadata"] = {{"weight_version", ctx_.args.weight_version}};
        } else {
            if (batch_) {
                body = Json::array();
                for (const auto& c : choices_) {
                    body.push_back(generate_object(c, false));
                }
            } else {
                body = generate_object(choices_[0], false);
            }
        }
        responder_->send(200, "application/json", dump(body));
    }
};

}  // namespace
}  // namespace dsserve::server

namespace dsserve::server {
namespace {

Json parse_body(const HttpRequest& req, bool require_json_type) {
    if (require_json_type) {
        std::string type = req.header("content-type");
        type = type.substr(0, type.find(';'));
        while (!type.empty() && type.back() == ' ') {
            type.pop_back();
        }
        if (type != "application/json") {
            throw ApiError(400, "Unsupported Media Type: Only 'application/json' is allowed",
                           "Bad Request");
        }
    }
    Json body = Json::parse(req.body, nullptr, false);
    if (body.is_discarded()) {
        throw ApiError(400, "JSON decode error: the request body is not valid JSON", "Bad Request");
    }
    if (!body.is_object()) {
        throw ApiError(400, "The request body must be a JSON object", "Bad Request");
    }
    return body;
}

// Checks the prompt against the context, truncating when allowed; returns max_new_tokens.
int fit_context(ServerContext& ctx, std::vector<std::int32_t>& ids, GenParams& g) {
    const auto ctx_len = ctx.context_length;
    auto n = static_cast<std::int64_t>(ids.size());
    if (n >= ctx_len) {
        if (!ctx.args.allow_auto_truncate) {
            bad_request("The input (" + std::to_string(n) +
                        " tokens) is longer than the model's context length (" +
                        std::to_string(ctx_len) + " tokens).");
        }
        log::warn("truncating a prompt of ", n, " tokens to the context length ", ctx_len - 1);
        ids.resize(static_cast<std::size_t>(ctx_len - 1));
        n = ctx_len - 1;
    }
    if (!g.max_tokens_given) {
        g.stop.max_new_tokens =
            static_cast<int>(std::min<std::int64_t>(ctx_len - n, g.stop.max_new_tokens));
    } else if (n + g.stop.max_new_tokens > ctx_len) {
        if (!ctx.args.allow_auto_truncate) {
            bad_request("Requested token count exceeds the model's maximum context length of " +
                        std::to_string(ctx_len) + " tokens. You requested a total of " +
                        std::to_string(n + g.stop.max_new_tokens) +
                        " tokens: " + std::to_string(n) + " tokens from the input messages and " +
                        std::to_string(g.stop.max_new_tokens) +
                        " tokens for the completion. Please reduce the number of tokens in the "
                        "input messages or the "
                        "completion to fit within the limit.");
        }
        g.stop.max_new_tokens = static_cast<int>(ctx_len - n);
    }
    return g.stop.max_new_tokens;
}

void check_ids(ServerContext& ctx, const std::vector<std::int32_t>& ids, const char* what) {
    const auto vocab = ctx.engine->model_config().vocab_size;
    for (auto id : ids) {
        if (id < 0 || id >= vocab) {
            bad_request(std::string(what) + ": token id " + std::to_string(id) +
                        " is outside the vocabulary (size " + std::to_string(vocab) + ").");
        }
    }
}

void chat_completions(ServerContext& ctx, const HttpRequest& req,
                      std::shared_ptr<Responder> responder) {
    Json body = parse_body(req, true);
    const Json* messages = body.contains("messages") ? &body["messages"] : nullptr;
    if (messages == nullptr || messages->is_null()) {
        throw ApiError(400, "messages: Field required", "Bad Request");
    }
    if (messages->is_array() && messages->empty()) {
        bad_request("Messages cannot be empty.");
    }
    chat::ChatRequest chat_req;
    try {
        chat_req = chat::parse_chat_request(body);
    } catch (const ApiError&) {
        throw;
    } catch (const Error& e) {
        bad_request(e.what());
    }
    Fields f(body);
    GenParams g;
    g.stop.max_new_tokens = 1 << 30;
    // --sampling-defaults model: unset temperature / top_p come from generation_config.json.
    if (ctx.args.sampling_defaults == "model") {
        if (ctx.generation_defaults.contains("temperature")) {
            g.sampling.temperature = ctx.generation_defaults["temperature"].get<float>();
        }
        if (ctx.generation_defaults.contains("top_p")) {
            g.sampling.top_p = ctx.generation_defaults["top_p"].get<float>();
        }
    }
    read_sampling(f, g, ctx.engine->model_config().vocab_size, "max_completion_tokens",
                  "max_tokens", "min_tokens");
    if (f.boolean("logprobs").value_or(false)) {
        g.logprobs = true;
        g.top_logprobs = static_cast<int>(f.integer("top_logprobs").value_or(0));
        if (g.top_logprobs < 0 || g.top_logprobs > 20) {
            bad_request("top_logprobs must be between 0 and 20.");
        }
    }
    // Tools: validate, and decide whether a parser runs for this request.
    for (std::size_t i = 0; i < chat_req.tools.size(); ++i) {
        const Json& t = chat_req.tools[i];
        if (!t.is_object() || !t.contains("function") || !t["function"].is_object() ||
            !t["function"].contains("name") || !t["function"]["name"].is_string()) {
            bad_request("Tool " + std::to_string(i) +
                        " must be {\"type\": \"function\", \"function\": {\"name\": ...}}.");
        }
        const Json& fn = t["function"];
        if (fn.contains("parameters") && !fn["parameters"].is_null() &&
            !(fn["parameters"].is_object() || fn["parameters"].is_boolean())) {
            bad_request("Tool " + std::to_string(i) +
                        " function has invalid 'parameters' schema: must be an object.");
        }
        if (fn.contains("parameters") && fn["parameters"].is_object() &&
            fn["parameters"].contains("type") && !fn["parameters"]["type"].is_string() &&
            !fn["parameters"]["type"].is_array()) {
            bad_request("Tool " + std::to_string(i) +
                        " function has invalid 'parameters' schema: 'type' must be a string.");
        }
    }
    std::string tool_choice = "auto";
    if (chat_req.tool_choice.is_string()) {
        tool_choice = chat_req.tool_choice.get<std::string>();
        if (tool_choice != "none" && tool_choice != "auto" && tool_choice != "required") {
            bad_request("tool_choice must be none, auto, required or a function, got '" +
                        tool_choice + "'.");
        }
    } else if (chat_req.tool_choice.is_object()) {
        tool_choice = "named";
    } else if (chat_req.tools.empty()) {
        tool_choice = "none";
    }
    if (tool_choice == "required" && chat_req.tools.empty()) {
        bad_request("Tools cannot be empty if tool choice is set to required.");
    }
    if (tool_choice == "named") {
        std::string name = chat_req.tool_choice.value("/function/name"_json_pointer, std::string());
        bool found = false;
        for (const auto& t : chat_req.tools) {
            found = found || t["function"]["name"] == name;
        }
        if (!found) {
            bad_request("Tool '" + name + "' not found in tools list.");
        }
    }
    if (!chat_req.tools.empty() && ctx.speciale) {
        bad_request(
            "DeepSeek-V3.2-Speciale does not support tool calls; send the request without "
            "'tools'.");
    }
    if (tool_choice == "required" || tool_choice == "named") {
        bad_request(
            "tool_choice '" + (tool_choice == "named" ? std::string("function") : tool_choice) +
            "' needs constrained decoding, which dsserve does not implement yet; use \"auto\".");
    }
    const bool tools_active =
        !chat_req.tools.empty() && tool_choice != "none" && !ctx.tool_parser.empty();
    if (tools_active) {
        g.skip_special_tokens = false;
    }
    std::string prompt;
    try {
        prompt = ctx.prompt_builder->build(chat_req);
    } catch (const Error& e) {
        bad_request(e.what());
    }
    auto ids = ctx.tokenizer->encode(prompt, false);
    fit_context(ctx, ids, g);

    std::optional<parsers::OutputParserOptions> parser;
    const bool separate = f.boolean("separate_reasoning").value_or(true);
    const std::string reasoning = separate ? ctx.reasoning_parser : "";
    if (!reasoning.empty() || tools_active) {
        parsers::OutputParserOptions po;
        po.reasoning_parser = reasoning;
        po.tool_parser = tools_active ? ctx.tool_parser : "";
        po.thinking = chat::thinking_enabled(chat_req);
        po.stream_reasoning = f.boolean("stream_reasoning").value_or(true);
        for (const auto& t : chat_req.tools) {
            po.tool_names.push_back(t["function"]["name"].get<std::string>());
        }
        parser = po;
    }
    auto job = std::make_shared<Job>(ctx, Kind::kChat, std::move(responder));
    if (const Json* model = f.get("model"); model && model->is_string()) {
        job->model_ = model->get<std::string>();
    }
    job->stream_ = f.boolean("stream").value_or(false);
    if (const Json* so = f.get("stream_options"); so && so->is_object()) {
        job->include_usage_ = so->value("include_usage", false);
    }
    if (ctx.args.log_requests) {
        log::info("chat request ", job->id_, ": ", ids.size(), " prompt tokens, max_new_tokens ",
                  g.stop.max_new_tokens);
    }
    job->submit({ids}, g, parser);
}

void completions(ServerContext& ctx, const HttpRequest& req, std::shared_ptr<Responder> responder) {
    Json body = parse_body(req, true);
    Fields f(body);
    GenParams g;
    g.stop.max_new_tokens = 16;
    read_sampling(f, g, ctx.engine->model_config().vocab_size, "max_tokens", nullptr, "min_tokens");
    if (g.max_tokens_given && g.stop.max_new_tokens == 0) {
        bad_request("max_tokens must be at least 1, got 0.");
    }
    g.max_tokens_given = true;
    if (auto lp = f.integer("logprobs")) {
        if (*lp < 0 || *lp > 20) {
            bad_request("logprobs must be between 0 and 20.");
        }
        g.logprobs = true;
        g.top_logprobs = static_cast<int>(*lp);
    }
    const Json* prompt = f.get("prompt");
    if (prompt == nullptr) {
        throw ApiError(400, "prompt: Field required", "Bad Request");
    }
    std::vector<std::vector<std::int32_t>> prompts;
    std::vector<std::string> texts;
    auto add_text = [&](const Json& t) {
        std::string s = t.get<std::string>();
        if (s.find_first_not_of(" \t\r\n") == std::string::npos) {
            bad_request("The prompt is empty.");
        }
        texts.push_back(s);
        prompts.push_back(ctx.tokenizer->encode(s, true));
    };
    auto add_ids = [&](const Json& a) {
        std::vector<std::int32_t> ids;
        for (const auto& x : a) {
            if (!x.is_number_integer() || x.get<std::int64_t>() < 0) {
                bad_request("prompt: token ids must be non-negative integers.");
            }
            ids.push_back(x.get<std::int32_t>());
        }
        if (ids.empty()) {
            bad_request("The prompt is empty.");
        }
        check_ids(ctx, ids, "prompt");
        texts.push_back(ctx.tokenizer->decode(ids, false));
        prompts.push_back(std::move(ids));
    };
    if (prompt->is_string()) {
        add_text(*prompt);
    } else if (prompt->is_array() && !prompt->empty() && (*prompt)[0].is_string()) {
        for (const auto& p : *prompt) {
            if (!p.is_string()) {
                bad_request("prompt: a list must hold only strings or only token lists.");
            }
            add_text(p);
        }
    } else if (prompt->is_array() && !prompt->empty() && (*prompt)[0].is_array()) {
        for (const auto& p : *prompt) {
            if (!p.is_array()) {
                bad_request("prompt: a list must hold only strings or only token lists.");
            }
            add_ids(p);
        }
    } else if (prompt->is_array() && !prompt->empty()) {
        add_ids(*prompt);
    } else {
        bad_request(
            "prompt must be a string, a list of strings, a list of token ids or a list of token "
            "lists.");
    }
    for (auto& ids : prompts) {
        GenParams copy = g;
        fit_context(ctx, ids, copy);
        g.stop.max_new_tokens = std::min(g.stop.max_new_tokens, copy.stop.max_new_tokens);
    }
    auto job = std::make_shared<Job>(ctx, Kind::kCompletion, std::move(responder));
    if (const Json* model = f.get("model"); model && model->is_string()) {
        job->model_ = model->get<std::string>();
    }
    job->stream_ = f.boolean("stream").value_or(false);
    job->echo_ = f.boolean("echo").value_or(false);
    job->prompt_texts_ = texts;
    if (const Json* so = f.get("stream_options"); so && so->is_object()) {
        job->include_usage_ = so->value("include_usage", false);
    }
    job->submit(prompts, g, std::nullopt);
}

void generate(ServerContext& ctx, const HttpRequest& req, std::shared_ptr<Responder> responder) {
    Json body = parse_body(req, false);
    Fields f(body);
    std::vector<std::vector<std::int32_t>> prompts;
    bool batch = false;
    if (const Json* text = f.get("text")) {
        if (text->is_string()) {
            prompts.push_back(ctx.tokenizer->encode(text->get<std::string>(), true));
        } else if (text->is_array()) {
            batch = true;
            for (const auto& t : *text) {
                if (!t.is_string()) {
                    bad_request("text: Input should be a string or a list of strings");
                }
                prompts.push_back(ctx.tokenizer->encode(t.get<std::string>(), true));
            }
        } else {
            bad_request("text: Input should be a string or a list of strings");
        }
    } else if (const Json* ids = f.get("input_ids")) {
        auto to_ids = [&](const Json& a) {
            std::vector<std::int32_t> out;
            for (const auto& x : a) {
                if (!x.is_number_integer()) {
                    bad_request("input_ids: Input should be a list of integers");
                }
                out.push_back(x.get<std::int32_t>());
            }
            check_ids(ctx, out, "input_ids");
            return out;
        };
        if (!ids->is_array()) {
            bad_request("input_ids: Input should be a list of integers");
        }
        if (!ids->empty() && (*ids)[0].is_array()) {
            batch = true;
            for (const auto& a : *ids) {
                if (!a.is_array()) {
                    bad_request("input_ids: Input should be a list of integers or a list of lists");
                }
                prompts.push_back(to_ids(a));
            }
        } else {
            prompts.push_back(to_ids(*ids));
        }
    } else {
        bad_request("Either text or input_ids should be provided.");
    }
    for (const auto& p : prompts) {
        if (p.empty()) {
            bad_request("The input is empty.");
        }
    }
    Json sp = body.value("sampling_params", Json::object());
    if (sp.is_array()) {
        sp = sp.empty() ? Json::object() : sp[0];
    }
    if (!sp.is_object()) {
        bad_request("sampling_params: Input should be a valid dictionary");
    }
    Fields sf(sp);
    GenParams g;
    g.stop.max_new_tokens = 128;
    read_sampling(sf, g, ctx.engine->model_config().vocab_size, "max_new_tokens", nullptr,
                  "min_new_tokens");
    g.max_tokens_given = true;
    g.logprobs = f.boolean("return_logprob").value_or(false);
    g.top_logprobs = static_cast<int>(f.integer("top_logprobs_num").value_or(0));
    for (auto& p : prompts) {
        GenParams copy = g;
        fit_context(ctx, p, copy);
    }
    auto job = std::make_shared<Job>(ctx, Kind::kGenerate, std::move(responder));
    if (const Json* rid = f.get("rid"); rid && rid->is_string() && !batch) {
        job->id_ = rid->get<std::string>();
    }
    job->stream_ = f.boolean("stream").value_or(false);
    job->batch_ = batch;
    job->submit(prompts, g, std::nullopt);
}

Json model_card(const ServerContext& ctx) {
    return Json{{"id", ctx.model_name},
                {"object", "model"},
                {"created", unix_time()},
                {"owned_by", "sglang"},
                {"root", ctx.model_name},
                {"parent", nullptr},
                {"max_model_len", ctx.context_length}};
}

void health(ServerContext& ctx, std::shared_ptr<Responder> responder) {
    if (!ctx.ready.load()) {
        responder->send(503, "text/plain", "");
        return;
    }
    // An internal one-token request proves the engine turns over.
    runtime::GenerateRequest r;
    r.rid = "health-" + new_request_id();
    r.input_ids = {0};
    r.sampling.temperature = 0.0f;
    r.stop.max_new_tokens = 1;
    auto answered = std::make_shared<std::atomic<bool>>(false);
    r.on_output = [responder, answered](const runtime::RequestOutput&) {
        if (!answered->exchange(true)) {
            responder->send(200, "text/plain", "");
        }
    };
    ctx.engine->submit(std::move(r));
    auto self_timeout = std::thread([responder, answered] {
        for (int i = 0; i < 200 && !answered->load(); ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        if (!answered->exchange(true)) {
            responder->send(503, "text/plain", "");
        }
    });
    self_timeout.detach();
}

Json server_info(ServerContext& ctx) {
    Json info = ctx.args.to_json();
    auto s = ctx.engine->stats();
    const auto& sc = ctx.engine->config();
    info["served_model_name"] = ctx.model_name;
    info["tool_call_parser"] = ctx.tool_parser.empty() ? Json(nullptr) : Json(ctx.tool_parser);
    info["reasoning_parser"] =
        ctx.reasoning_parser.empty() ? Json(nullptr) : Json(ctx.reasoning_parser);
    info["context_length"] = ctx.context_length;
    info["page_size"] = sc.page_size;
    info["max_running_requests"] = sc.max_running_requests;
    info["chunked_prefill_size"] = sc.chunked_prefill_size;
    info["max_total_num_tokens"] = s.capacity_tokens;
    info["max_req_input_len"] = ctx.context_length - 1;
    info["internal_states"] = Json::array({Json{{"avg_spec_accept_length", nullptr},
                                                {"last_gen_throughput", s.last_gen_throughput},
                                                {"num_running_reqs", s.num_running},
                                                {"num_queue_reqs", s.num_waiting},
                                                {"num_used_tokens", s.used_tokens},
                                                {"num_cached_tokens", s.cached_tokens_in_tree},
                                                {"num_retracted_reqs", s.retractions},
                                                {"num_steps", s.steps},
                                                // Enqueued before the step before had its
                                                // tokens (the overlap schedule).
                                                {"num_overlapped_steps", s.overlapped_steps},
                                                {"num_prefill_tokens", s.prefill_tokens},
                                                {"num_decode_tokens", s.decode_tokens},
                                                // The scheduler's own time: plan + commit.
                                                {"scheduler_seconds", s.schedule_seconds},
                                                {"scheduler_plan_seconds", s.plan_seconds},
                                                {"scheduler_commit_seconds", s.commit_seconds},
                                                {"sampling_seconds", s.sample_seconds},
                                                {"forward_seconds", s.forward_seconds}}});
    info["version"] = "dsserve 0.1.0";
    return info;
}

}  // namespace

std::string new_request_id() {
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    std::uint64_t a = rng(), b = rng();
    b = (b & 0xffffffffffff0fffull) | 0x0000000000004000ull;  // version 4 nibble
    char buf[40];
    std::snprintf(buf, sizeof(buf), "%016llx%016llx", static_cast<unsigned long long>(a),
                  static_cast<unsigned long long>(b));
    return buf;
}

Api::Api(ServerContext& ctx) : ctx_(ctx) {}

void Api::handle(HttpRequest req, std::shared_ptr<Responder> responder) {
    const std::string& path = req.path;
    const bool openai = path.rfind("/v1/", 0) == 0;
    try {
        if (req.method == "OPTIONS") {
            responder->send(
                200, "text/plain", "",
                {{"Access-Control-Allow-Methods", "*"}, {"Access-Control-Allow-Headers", "*"}});
            return;
        }
        if (!ctx_.args.api_key.empty() && path.rfind("/health", 0) != 0 &&
            path.rfind("/metrics", 0) != 0 &&
            req.header("authorization") != "Bearer " + ctx_.args.api_key) {
            responder->send(401, "application/json", R"({"error": "Unauthorized"})");
            return;
        }
        const bool post = req.method == "POST";
        if (path == "/v1/chat/completions" && post) {
            return chat_completions(ctx_, req, responder);
        }
        if (path == "/v1/completions" && post) {
            return completions(ctx_, req, responder);
        }
        if (path == "/generate" && (post || req.method == "PUT")) {
            return generate(ctx_, req, responder);
        }
        if (path == "/v1/models" && req.method == "GET") {
            responder->send(
                200, "application/json",
                dump(Json{{"object", "list"}, {"data", Json::array({model_card(ctx_)})}}));
            return;
        }
        if (path.rfind("/v1/models/", 0) == 0 && req.method == "GET") {
            std::string id = path.substr(11);
            if (id != ctx_.model_name) {
                responder->send(404, "application/json",
                                dump(Json{{"error",
                                           {{"message", "The model '" + id + "' does not exist"},
                                            {"type", "invalid_request_error"},
                                            {"param", "model"},
                                            {"code", "model_not_found"}}}}));
                return;
            }
            responder->send(200, "application/json", dump(model_card(ctx_)));
            return;
        }
        if (path == "/health" || path == "/health_generate") {
            return health(ctx_, responder);
        }
        if (path == "/ping") {
            responder->send(200, "text/plain", "");
            return;
        }
        if (path == "/get_model_info") {
            responder->send(200, "application/json",
                            dump(Json{{"model_path", ctx_.args.model_path},
                                      {"tokenizer_path", ctx_.args.tokenizer_path.empty()
                                                             ? ctx_.args.model_path
                                                             : ctx_.args.tokenizer_path},
                                      {"is_generation", true},
                                      {"preferred_sampling_params", nullptr},
                                      {"weight_version", ctx_.args.weight_version},
                                      {"served_model_name", ctx_.model_name}}));
            return;
        }
        if (path == "/get_server_info" || path == "/server_info") {
            responder->send(200, "application/json", dump(server_info(ctx_)));
            return;
        }
        if (path == "/get_load") {
            auto s = ctx_.engine->stats();
            responder->send(200, "application/json",
                            dump(Json::array({Json{{"num_reqs", s.num_running + s.num_waiting},
                                                   {"num_waiting_reqs", s.num_waiting},
                                                   {"num_tokens", s.used_tokens}}})));
            return;
        }
        if (path == "/flush_cache" && (post || req.method == "GET")) {
            bool ok = ctx_.engine->flush_cache();
            responder->send(ok ? 200 : 400, "text/plain",
                            "Cache flushed.\nPlease check backend logs for more details. (When "
                            "there are running or "
                            "waiting requests, the operation will not be performed.)\n");
            return;
        }
        if (path == "/abort_request" && post) {
            Json body = parse_body(req, false);
            if (body.contains("rid") && body["rid"].is_string()) {
                ctx_.engine->abort(body["rid"].get<std::string>());
            }
            responder->send(200, "application/json", "{}");
            return;
        }
        if (path == "/metrics" && req.method == "GET") {
            if (!ctx_.args.enable_metrics) {
                responder->send(404, "application/json", R"({"detail": "Not Found"})");
                return;
            }
            responder->send(200, "text/plain; version=0.0.4; charset=utf-8",
                            ctx_.metrics->render(ctx_.engine->stats(), ctx_.startup_seconds));
            return;
        }
        if (req.method == "GET" && ctx_.web) {
            std::string asset_body, type;
            if (ctx_.web(path, asset_body, type)) {
                responder->send(200, type, std::move(asset_body));
                return;
            }
        }
        responder->send(404, "application/json", R"({"detail": "Not Found"})");
    } catch (const ApiError& e) {
        if (openai) {
            responder->send(e.status, "application/json",
                            dump(openai_error(e.status, e.what(), e.type)));
        } else {
            responder->send(e.status, "application/json",
                            dump(Json{{"error", {{"message", e.what()}}}}));
        }
    } catch (const std::exception& e) {
        log::error("request to ", path, " failed: ", e.what());
        std::string msg = std::string("Internal server error: ") + e.what();
        responder->send(500, "application/json",
                        dump(openai_error(500, msg, "InternalServerError")));
    }
}

}  // namespace dsserve::server
