// One serving benchmark run (spec §6): warmup, then every dataset row sent as its own HTTP
// request, arrivals paced by --request-rate (Poisson) and capped by --max-concurrency, all on one
// io_context and one thread; then the figures. A request that fails (connection error, HTTP
// error, malformed stream) is recorded with its error and never stops the run.
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "bench/backend.h"
#include "bench/dataset.h"
#include "bench/http_client.h"
#include "bench/metrics.h"
#include "bench/numpy_random.h"

namespace dsserve::bench {

struct BenchmarkConfig {
    Url url;
    std::string backend_name = "sglang";  // as typed; printed in the table
    RequestOptions request;
    double request_rate = 0;  // requests per second; +inf sends everything at once
    std::optional<std::int64_t> max_concurrency;
    std::int64_t warmup_requests = 1;
    bool flush_cache = false;   // POST /flush_cache before timing
    bool show_progress = true;  // progress bar on stderr
    // A request fails, and the run goes on, when the server sends nothing for this long (no
    // header, no next piece of the stream). Not a limit on the whole request: a generation that
    // keeps streaming is never cut, however long, so figures of long runs stay whole.
    std::chrono::seconds request_timeout{300};
};

struct BenchmarkResult {
    BenchmarkMetrics metrics;
    std::vector<RequestOutput> outputs;  // one per dataset row, in dataset order
};

// codec re-tokenizes the generated texts for "Total generated tokens (retokenized)".
// np_rng continues the generator that drew the dataset, for the Poisson gaps.
// Throws Error only when the warmup requests all fail (the server is not there).
BenchmarkResult run_benchmark(const BenchmarkConfig& config, const std::vector<DatasetRow>& rows,
                              const TokenCodec& codec, NumpyRandom& np_rng);

// Sends rows with the config's pacing and returns their outputs and the wall time from first
// dispatch to last completion. Used by run_benchmark (and its warmup); exposed for tests.
std::vector<RequestOutput> send_requests(const BenchmarkConfig& config,
                                         const std::vector<DatasetRow>& rows, NumpyRandom& np_rng,
                                         bool show_progress, double* duration_s);

// The OpenAI "model" field when --model is not given: data[0].id of GET /v1/models, else
// "default".
std::string discover_model(const Url& url);

// internal_states[0].avg_spec_accept_length of /get_server_info (or the top-level key of older
// servers); nullopt when absent or the call fails.
std::optional<double> fetch_accept_length(const Url& url);

// "N of M requests failed:" and one line per failed request (the first `limit`); empty when none
// failed.
std::string format_failures(const std::vector<RequestOutput>& outputs, std::size_t limit = 20);

}  // namespace dsserve::bench
