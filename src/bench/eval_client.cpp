#include "bench/eval_client.h"

#include <boost/asio/io_context.hpp>
#include <cstdio>
#include <functional>
#include <memory>

#include "core/error.h"

namespace dsserve::bench {

namespace asio = boost::asio;

std::string common_prefix(const std::vector<std::string>& prompts) {
    if (prompts.empty()) {
        return {};
    }
    std::size_t n = prompts[0].size();
    for (const std::string& p : prompts) {
        std::size_t i = 0;
        while (i < n && i < p.size() && p[i] == prompts[0][i]) {
            ++i;
        }
        n = i;
    }
    // Do not end inside a multi-byte character: drop continuation bytes and their lead byte.
    if (n < prompts[0].size()) {
        while (n > 0 && (static_cast<unsigned char>(prompts[0][n]) & 0xC0) == 0x80) {
            --n;
        }
    }
    return prompts[0].substr(0, n);
}

void check_server(const Url& url) {
    const HttpResponse r = http_fetch(url, {"GET", "/get_model_info", "", {}});
    DS_CHECK(r.ok(), "GET ", url.str(), "/get_model_info failed (",
             r.error.empty() ? str_cat("HTTP ", r.status) : r.error, "); is the server running?");
}

namespace {

GenerateResult parse_generate(int status, const std::string& body, const std::string& error) {
    GenerateResult out;
    if (!error.empty()) {
        out.error = error;
        return out;
    }
    if (status != 200) {
        out.error = str_cat("HTTP ", status, ": ", body.substr(0, 300));
        return out;
    }
    const Json j = Json::parse(body, nullptr, false);
    if (!j.is_object() || !j.contains("text") || !j["text"].is_string()) {
        out.error = str_cat("malformed response: ", body.substr(0, 300));
        return out;
    }
    out.text = j["text"].get<std::string>();
    if (j.contains("meta_info") && j["meta_info"].is_object() &&
        j["meta_info"].contains("completion_tokens") &&
        j["meta_info"]["completion_tokens"].is_number_integer()) {
        out.completion_tokens = j["meta_info"]["completion_tokens"].get<std::int64_t>();
    }
    out.success = true;
    return out;
}

}  // namespace

std::vector<GenerateResult> generate_all(const Url& url, const std::vector<std::string>& prompts,
                                         const Json& sampling_params, int parallel,
                                         bool show_progress, std::chrono::seconds timeout) {
    DS_CHECK(parallel >= 1, "--parallel must be at least 1");
    const std::string prefix = common_prefix(prompts);
    if (prompts.size() > 1 && prefix.size() > 64) {
        http_fetch(url,
                   {"POST",
                    "/generate",
                    Json({{"text", prefix}, {"sampling_params", {{"max_new_tokens", 0}}}}).dump(),
                    {}});
    }
    asio::io_context io;
    HttpClient client(io, url, timeout);
    std::vector<GenerateResult> results(prompts.size());
    std::size_t next = 0, done = 0;
    std::function<void()> launch = [&] {
        const std::size_t i = next++;
        Json body = {{"text", prompts[i]}, {"sampling_params", sampling_params}};
        auto status = std::make_shared<int>(0);
        auto text = std::make_shared<std::string>();
        client.start({"POST", "/generate", body.dump(), {}},
                     {[status](int s, std::string_view) { *status = s; },
                      [text](std::string_view d) { text->append(d); },
                      [&, i, status, text](const std::string& error) {
                          results[i] = parse_generate(*status, *text, error);
                          ++done;
                          if (show_progress) {
                              std::fprintf(stderr, "\r%zu/%zu", done, prompts.size());
                              if (done == prompts.size()) {
                                  std::fputc('\n', stderr);
                              }
                          }
                          if (next < prompts.size()) {
                              launch();
                          }
                      }});
    };
    for (int k = 0; k < parallel && next < prompts.size(); ++k) {
        launch();
    }
    io.run();
    return results;
}

}  // namespace dsserve::bench
