// Benchmark workloads (spec §6.2): the ShareGPT prompts and SGLang's "random" dataset, whose
// prompts are ShareGPT text cut or repeated to a drawn number of tokens.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bench/numpy_random.h"

namespace dsserve::bench {

// Text <-> token ids as the benchmark needs them: the model's tokenizer in the CLI, a stand-in in
// tests. encode adds no special tokens.
class TokenCodec {
public:
    virtual ~TokenCodec() = default;
    virtual std::vector<std::int32_t> encode(std::string_view text) const = 0;
    virtual std::string decode(std::span<const std::int32_t> ids) const = 0;
};

struct DatasetRow {
    std::string prompt;
    std::int64_t prompt_len = 0;  // client-side token count (the drawn length for "random")
    std::int64_t output_len = 0;  // max new tokens asked for
};

// First human turns of a ShareGPT JSON file ([{"conversations": [{"from", "value"}, ...]}]), in
// file order. The repository's copy holds only first turns; in a file with replies, as SGLang
// does, conversations of a single turn are left out (later turns are otherwise ignored).
std::vector<std::string> load_sharegpt_prompts(const std::filesystem::path& path);

struct RandomSpec {
    std::int64_t input_len = 1024;
    std::int64_t output_len = 1024;
    double range_ratio = 0.0;
};

// Lengths drawn as SGLang draws them: uniform integers in [max(floor(L * r), 1), L], inputs
// first, then outputs, from the numpy-compatible generator.
std::vector<std::int64_t> draw_lengths(NumpyRandom& rng, std::int64_t len, double range_ratio,
                                       std::size_t n);

// SGLang's "random" dataset: prompt i is a ShareGPT prompt (in the order Python's
// random.shuffle gives after random.seed(shuffle_seed), as in bench_serving; wrapping around when
// there are fewer than n) tokenized, cut or repeated to exactly input_lens[i] tokens, then decoded
// back to text. Prompts that encode to nothing are skipped.
std::vector<DatasetRow> sample_random_requests(const std::vector<std::string>& prompts,
                                               const TokenCodec& codec, const RandomSpec& spec,
                                               std::size_t num_prompts, NumpyRandom& np_rng,
                                               std::uint64_t shuffle_seed);

// ShareGPT prompts in bench_serving's shuffled order (as above), each with its token count. The
// copy has no reference replies, so every output length is fixed_output_len when given, else
// drawn like the random dataset's output lengths. Prompts under 2 tokens are skipped (as SGLang
// does); the list wraps around when num_prompts exceeds what the file holds.
std::vector<DatasetRow> sample_sharegpt_requests(const std::vector<std::string>& prompts,
                                                 const TokenCodec& codec, std::size_t num_prompts,
                                                 std::optional<std::int64_t> fixed_output_len,
                                                 const RandomSpec& output_spec, NumpyRandom& np_rng,
                                                 std::uint64_t shuffle_seed);

}  // namespace dsserve::bench
