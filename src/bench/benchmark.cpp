#include "bench/benchmark.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <limits>
#include <memory>
#include <thread>

#include "core/error.h"
#include "core/log.h"

namespace dsserve::bench {

namespace asio = boost::asio;

namespace {

double seconds(Clock::duration d) {
    return std::chrono::duration<double>(d).count();
}

std::vector<std::pair<std::string, std::string>> auth_headers() {
    if (const char* key = std::getenv("OPENAI_API_KEY"); key != nullptr && *key != '\0') {
        return {{"Authorization", str_cat("Bearer ", key)}};
    }
    return {};
}

// Up to 1024 concurrent streams need as many sockets; the usual soft limit is 1024 in total.
void raise_open_file_limit() {
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        setrlimit(RLIMIT_NOFILE, &lim);
    }
}

// A tqdm-like line on stderr, redrawn at most ten times a second, and once a second while
// nothing completes (the dispatcher's tick), so that a stalled run shows its true count and a
// clock that keeps going rather than the count of its last burst.
class ProgressBar {
public:
    ProgressBar(std::size_t total, bool enabled)
        : total_(total), enabled_(enabled), start_(Clock::now()) {}

    void update(std::size_t done) {
        if (!enabled_) {
            return;
        }
        const auto now = Clock::now();
        if (done < total_ && now - last_draw_ < std::chrono::milliseconds(100)) {
            return;
        }
        last_draw_ = now;
        const double elapsed = seconds(now - start_);
        const double frac = total_ == 0 ? 1.0 : static_cast<double>(done) / total_;
        constexpr int kWidth = 30;
        const int filled = static_cast<int>(frac * kWidth);
        std::string bar;
        for (int i = 0; i < kWidth; ++i) {
            bar += i < filled ? "\u2588" : " ";
        }
        const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;
        const double left = rate > 0 ? static_cast<double>(total_ - done) / rate : 0.0;
        std::fprintf(stderr, "\r%3d%%|%s| %zu/%zu [%s<%s, %.2fit/s]", static_cast<int>(frac * 100),
                     bar.c_str(), done, total_, clock_text(elapsed).c_str(),
                     clock_text(left).c_str(), rate);
        if (done == total_) {
            std::fputc('\n', stderr);
        }
        std::fflush(stderr);
    }

private:
    static std::string clock_text(double s) {
        const auto total = static_cast<long>(s);
        char buf[32];
        std::snprintf(buf, sizeof buf, "%02ld:%02ld", total / 60, total % 60);
        return buf;
    }

    std::size_t total_;
    bool enabled_;
    Clock::time_point start_;
    Clock::time_point last_draw_{};
};

// The dispatch loop: arrivals enter a queue (all at once, or at Poisson times), and a request
// leaves the queue as soon as fewer than max_concurrency are in flight.
class Dispatcher {
public:
    Dispatcher(asio::io_context& io, HttpClient& client, const BenchmarkConfig& config,
               const std::vector<DatasetRow>& rows, NumpyRandom& np_rng, bool show_progress)
        : io_(io),
          client_(client),
          config_(config),
          rows_(rows),
          timer_(io),
          tick_(io),
          outputs_(rows.size()),
          progress_(rows.size(), show_progress) {
        const Backend backend = parse_backend(config.backend_name);
        backend_ = backend;
        bodies_.reserve(rows.size());
        for (const DatasetRow& row : rows) {
            bodies_.push_back(
                build_request_body(backend, row.prompt, row.output_len, config.request).dump());
        }
        // Gaps drawn up front, one after each request as SGLang's generator does, so pacing
        // does not depend on how fast responses come back.
        if (!std::isinf(config.request_rate)) {
            DS_CHECK(config.request_rate > 0, "--request-rate must be positive or inf");
            for (std::size_t i = 0; i < rows.size(); ++i) {
                gaps_.push_back(np_rng.exponential(1.0 / config.request_rate));
            }
        }
    }

    std::vector<RequestOutput> run(double* duration_s) {
        if (rows_.empty()) {
            *duration_s = 0;
            return {};
        }
        t0_ = Clock::now();
        next_arrival_ = t0_;
        arrive();
        tick();
        io_.run();
        *duration_s = seconds(end_ - t0_);
        return std::move(outputs_);
    }

private:
    void arrive() {
        if (gaps_.empty()) {
            for (std::size_t i = 0; i < rows_.size(); ++i) {
                pending_.push_back(i);
            }
            arrived_ = rows_.size();
            dispatch();
            return;
        }
        pending_.push_back(arrived_);
        const double gap = gaps_[arrived_];
        ++arrived_;
        dispatch();
        if (arrived_ < rows_.size()) {
            next_arrival_ +=
                std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(gap));
            timer_.expires_at(next_arrival_);
            timer_.async_wait([this](const boost::system::error_code& ec) {
                if (!ec) {
                    arrive();
                }
            });
        }
    }

    void tick() {
        if (completed_ == rows_.size()) {
            return;
        }
        progress_.update(completed_);
        tick_.expires_after(std::chrono::seconds(1));
        tick_.async_wait([this](const boost::system::error_code& ec) {
            if (!ec) {
                tick();
            }
        });
    }

    void dispatch() {
        while (!pending_.empty() &&
               (!config_.max_concurrency || in_flight_ < *config_.max_concurrency)) {
            const std::size_t i = pending_.front();
            pending_.pop_front();
            send(i);
        }
    }

    void send(std::size_t i) {
        ++in_flight_;
        const Clock::time_point sent = Clock::now();
        auto reader = std::make_shared<ResponseReader>(backend_, config_.request.stream,
                                                       rows_[i].output_len, sent);
        HttpRequest request{"POST", std::string(endpoint_path(backend_)), std::move(bodies_[i]),
                            auth_headers()};
        client_.start(
            std::move(request),
            {[reader](int status, std::string_view reason) { reader->on_status(status, reason); },
             [reader](std::string_view data) { reader->on_data(data, Clock::now()); },
             [this, reader, i, sent](const std::string& error) {
                 RequestOutput out = reader->finish(error, Clock::now());
                 out.prompt_len = rows_[i].prompt_len;
                 out.start_s = seconds(sent - t0_);
                 outputs_[i] = std::move(out);
                 --in_flight_;
                 ++completed_;
                 progress_.update(completed_);
                 if (completed_ == rows_.size()) {
                     end_ = Clock::now();
                     tick_.cancel();  // the last pending work: io_.run() returns
                 }
                 dispatch();
             }});
    }

    asio::io_context& io_;
    HttpClient& client_;
    const BenchmarkConfig& config_;
    const std::vector<DatasetRow>& rows_;
    Backend backend_ = Backend::kGenerate;
    asio::steady_timer timer_;
    asio::steady_timer tick_;
    std::vector<std::string> bodies_;
    std::vector<double> gaps_;
    std::vector<RequestOutput> outputs_;
    std::deque<std::size_t> pending_;
    std::size_t arrived_ = 0;
    std::int64_t in_flight_ = 0;
    std::size_t completed_ = 0;
    Clock::time_point t0_, end_, next_arrival_;
    ProgressBar progress_;
};

}  // namespace

std::vector<RequestOutput> send_requests(const BenchmarkConfig& config,
                                         const std::vector<DatasetRow>& rows, NumpyRandom& np_rng,
                                         bool show_progress, double* duration_s) {
    raise_open_file_limit();
    asio::io_context io;
    HttpClient client(io, config.url, config.request_timeout);
    Dispatcher dispatcher(io, client, config, rows, np_rng, show_progress);
    return dispatcher.run(duration_s);
}

std::string discover_model(const Url& url) {
    HttpResponse r = http_fetch(url, {"GET", "/v1/models", "", auth_headers()});
    if (r.ok()) {
        const Json j = Json::parse(r.body, nullptr, false);
        if (j.is_object() && j.contains("data") && j["data"].is_array() && !j["data"].empty() &&
            j["data"][0].is_object() && j["data"][0].contains("id") &&
            j["data"][0]["id"].is_string()) {
            return j["data"][0]["id"].get<std::string>();
        }
    }
    return "default";
}

std::optional<double> fetch_accept_length(const Url& url) {
    HttpResponse r = http_fetch(url, {"GET", "/get_server_info", "", auth_headers()});
    if (!r.ok()) {
        return std::nullopt;
    }
    const Json j = Json::parse(r.body, nullptr, false);
    if (!j.is_object()) {
        return std::nullopt;
    }
    const auto number = [](const Json& obj) -> std::optional<double> {
        auto it = obj.find("avg_spec_accept_length");
        if (it != obj.end() && it->is_number()) {
            return it->get<double>();
        }
        return std::nullopt;
    };
    auto states = j.find("internal_states");
    if (states != j.end() && states->is_array() && !states->empty() && (*states)[0].is_object()) {
        if (auto v = number((*states)[0])) {
            return v;
        }
    }
    return number(j);
}

std::string format_failures(const std::vector<RequestOutput>& outputs, std::size_t limit) {
    std::size_t failed = 0;
    for (const RequestOutput& o : outputs) {
        failed += o.success ? 0 : 1;
    }
    if (failed == 0) {
        return {};
    }
    std::string out = str_cat(failed, " of ", outputs.size(), " requests failed:\n");
    std::size_t shown = 0;
    for (std::size_t i = 0; i < outputs.size() && shown < limit; ++i) {
        if (!outputs[i].success) {
            out += str_cat("  request ", i, ": ", outputs[i].error, "\n");
            ++shown;
        }
    }
    if (failed > shown) {
        out += str_cat("  ... and ", failed - shown, " more\n");
    }
    return out;
}

BenchmarkResult run_benchmark(const BenchmarkConfig& config, const std::vector<DatasetRow>& rows,
                              const TokenCodec& codec, NumpyRandom& np_rng) {
    DS_CHECK(!rows.empty(), "no requests to send");
    if (config.warmup_requests > 0) {
        DatasetRow warm = rows.front();
        warm.output_len = std::min<std::int64_t>(warm.output_len, 32);
        std::vector<DatasetRow> warm_rows(static_cast<std::size_t>(config.warmup_requests), warm);
        BenchmarkConfig warm_config = config;
        warm_config.request_rate = std::numeric_limits<double>::infinity();
        warm_config.max_concurrency.reset();
        NumpyRandom unused(0);
        double ignored = 0;
        log::info("starting ", config.warmup_requests, " warmup request(s)");
        const auto warm_out = send_requests(warm_config, warm_rows, unused, false, &ignored);
        const bool any_ok = std::any_of(warm_out.begin(), warm_out.end(),
                                        [](const RequestOutput& o) { return o.success; });
        DS_CHECK(any_ok, "warmup failed, is the server at ", config.url.str(),
                 "? first error: ", warm_out.front().error);
        if (config.flush_cache) {
            http_fetch(config.url, {"POST", "/flush_cache", "", auth_headers()});
        }
        std::this_thread::sleep_for(std::chrono::seconds(1));
    } else if (config.flush_cache) {
        http_fetch(config.url, {"POST", "/flush_cache", "", auth_headers()});
    }

    BenchmarkResult result;
    double duration_s = 0;
    result.outputs = send_requests(config, rows, np_rng, config.show_progress, &duration_s);
    std::vector<std::int64_t> retokenized(result.outputs.size(), 0);
    for (std::size_t i = 0; i < result.outputs.size(); ++i) {
        if (result.outputs[i].success) {
            retokenized[i] =
                static_cast<std::int64_t>(codec.encode(result.outputs[i].generated_text).size());
        }
    }
    result.metrics = calculate_metrics(result.outputs, retokenized, duration_s);
    if (is_sglang_backend(config.backend_name)) {
        result.metrics.accept_length = fetch_accept_length(config.url);
    }
    return result;
}

}  // namespace dsserve::bench
