// Single-threaded encoding throughput of the tokenizer on a corpus, for comparison with HF
// `tokenizers` (tools/bench/bench_tokenizer.py runs both on the same texts).
//   dsserve-tokenizer-bench MODEL_DIR TEXTS.json [SECONDS]
// TEXTS.json is a JSON list of strings. Prints one JSON object: bytes, tokens, seconds and
// MB/s for the first pass (empty cache) and for repeated passes until SECONDS have passed.
#include <chrono>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/file.h"
#include "core/json.h"
#include "tokenizer/tokenizer.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Pass {
    std::size_t bytes = 0;
    std::size_t tokens = 0;
};

Pass encode_all(const dsserve::tokenizer::Tokenizer& tok, const std::vector<std::string>& texts) {
    Pass pass;
    for (const std::string& text : texts) {
        pass.tokens += tok.encode(text).size();
        pass.bytes += text.size();
    }
    return pass;
}

int run(int argc, char** argv) {
    DS_CHECK(argc >= 3, "usage: dsserve-tokenizer-bench MODEL_DIR TEXTS.json [SECONDS]");
    const double budget_s = argc > 3 ? std::stod(argv[3]) : 5.0;
    const auto load_start = Clock::now();
    const auto tok = dsserve::tokenizer::Tokenizer::load(argv[1]);
    const double load_s = std::chrono::duration<double>(Clock::now() - load_start).count();
    const auto texts =
        dsserve::Json::parse(dsserve::read_file(argv[2])).get<std::vector<std::string>>();

    auto start = Clock::now();
    const Pass first = encode_all(tok, texts);
    const double first_s = std::chrono::duration<double>(Clock::now() - start).count();

    std::size_t passes = 0;
    Pass total;
    start = Clock::now();
    double elapsed_s = 0;
    while (passes == 0 || elapsed_s < budget_s) {
        const Pass p = encode_all(tok, texts);
        total.bytes += p.bytes;
        total.tokens += p.tokens;
        ++passes;
        elapsed_s = std::chrono::duration<double>(Clock::now() - start).count();
    }
    dsserve::Json out = {
        {"texts", texts.size()},
        {"bytes_per_pass", first.bytes},
        {"tokens_per_pass", first.tokens},
        {"load_s", load_s},
        {"first_pass_s", first_s},
        {"first_pass_mb_per_s", first.bytes / first_s / 1e6},
        {"passes", passes},
        {"steady_s", elapsed_s},
        {"steady_mb_per_s", total.bytes / elapsed_s / 1e6},
        {"steady_tokens_per_s", total.tokens / elapsed_s},
    };
    std::printf("%s\n", out.dump().c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "dsserve-tokenizer-bench: error: %s\n", e.what());
        return 1;
    }
}
