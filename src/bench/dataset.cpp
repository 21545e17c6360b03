#include "bench/dataset.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "bench/python_random.h"
#include "core/error.h"
#include "core/file.h"
#include "core/json.h"

namespace dsserve::bench {

std::vector<std::string> load_sharegpt_prompts(const std::filesystem::path& path) {
    const Json data = Json::parse(read_file(path), nullptr, /*allow_exceptions=*/false);
    DS_CHECK(data.is_array(), path.string(), ": expected a JSON array of conversations");
    // SGLang keeps only conversations of two or more turns; the repository's copy holds first
    // turns alone, so that rule applies only to a file that has longer conversations at all.
    // Either way the list is in file order, so the seeded shuffle picks the same prompts.
    std::vector<std::pair<std::string, std::size_t>> firsts;  // prompt, number of turns
    bool any_reply = false;
    for (const Json& item : data) {
        if (!item.is_object() || !item.contains("conversations")) {
            continue;
        }
        const Json& turns = item["conversations"];
        if (!turns.is_array() || turns.empty() || !turns[0].is_object()) {
            continue;
        }
        auto value = turns[0].find("value");
        if (value != turns[0].end() && value->is_string()) {
            firsts.emplace_back(value->get<std::string>(), turns.size());
            any_reply = any_reply || turns.size() >= 2;
        }
    }
    std::vector<std::string> prompts;
    for (auto& [prompt, num_turns] : firsts) {
        if (!any_reply || num_turns >= 2) {
            prompts.push_back(std::move(prompt));
        }
    }
    DS_CHECK(!prompts.empty(), path.string(), ": no prompts found");
    return prompts;
}

std::vector<std::int64_t> draw_lengths(NumpyRandom& rng, std::int64_t len, double range_ratio,
                                       std::size_t n) {
    DS_CHECK(len >= 1, "lengths must be at least 1, got ", len);
    DS_CHECK(range_ratio >= 0.0 && range_ratio <= 1.0, "--random-range-ratio must be in [0, 1]");
    const auto low = std::max<std::int64_t>(
        static_cast<std::int64_t>(std::floor(static_cast<double>(len) * range_ratio)), 1);
    return rng.randint(low, len + 1, n);
}

namespace {

// random.seed(seed); random.shuffle(dataset), as bench_serving orders the conversations.
std::vector<std::size_t> shuffled_order(std::size_t n, std::uint64_t seed) {
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    PythonRandom(seed).shuffle(order);
    return order;
}

}  // namespace

std::vector<DatasetRow> sample_random_requests(const std::vector<std::string>& prompts,
                                               const TokenCodec& codec, const RandomSpec& spec,
                                               std::size_t num_prompts, NumpyRandom& np_rng,
                                               std::uint64_t shuffle_seed) {
    DS_CHECK(!prompts.empty(), "the random dataset needs source prompts");
    const auto input_lens = draw_lengths(np_rng, spec.input_len, spec.range_ratio, num_prompts);
    const auto output_lens = draw_lengths(np_rng, spec.output_len, spec.range_ratio, num_prompts);
    const auto order = shuffled_order(prompts.size(), shuffle_seed);
    std::vector<DatasetRow> rows;
    rows.reserve(num_prompts);
    std::size_t next = 0;
    for (std::size_t i = 0; i < num_prompts; ++i) {
        std::vector<std::int32_t> ids;
        // Skip source prompts that encode to nothing (cannot be repeated to a length).
        for (std::size_t tries = 0; ids.empty() && tries < prompts.size(); ++tries) {
            ids = codec.encode(prompts[order[next++ % order.size()]]);
        }
        DS_CHECK(!ids.empty(), "no source prompt encodes to any token");
        const auto want = static_cast<std::size_t>(input_lens[i]);
        std::vector<std::int32_t> cut;
        cut.reserve(want);
        while (cut.size() < want) {
            const std::size_t take = std::min(want - cut.size(), ids.size());
            cut.insert(cut.end(), ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(take));
        }
        rows.push_back({codec.decode(cut), input_lens[i], output_lens[i]});
    }
    return rows;
}

std::vector<DatasetRow> sample_sharegpt_requests(const std::vector<std::string>& prompts,
                                                 const TokenCodec& codec, std::size_t num_prompts,
                                                 std::optional<std::int64_t> fixed_output_len,
                                                 const RandomSpec& output_spec, NumpyRandom& np_rng,
                                                 std::uint64_t shuffle_seed) {
    DS_CHECK(!fixed_output_len || *fixed_output_len >= 1, "--sharegpt-output-len must be >= 1");
    std::vector<std::int64_t> output_lens;
    if (!fixed_output_len) {
        output_lens =
            draw_lengths(np_rng, output_spec.output_len, output_spec.range_ratio, num_prompts);
    }
    const auto order = shuffled_order(prompts.size(), shuffle_seed);
    std::vector<std::int64_t> lens(prompts.size(), -1);  // token counts, filled on first use
    std::vector<DatasetRow> rows;
    rows.reserve(num_prompts);
    for (std::size_t k = 0, misses = 0; rows.size() < num_prompts; ++k) {
        const std::size_t p = order[k % order.size()];
        if (lens[p] < 0) {
            lens[p] = static_cast<std::int64_t>(codec.encode(prompts[p]).size());
        }
        if (lens[p] < 2) {
            DS_CHECK(++misses <= prompts.size(),
                     "no ShareGPT prompt has 2 or more tokens");  // a full cycle
            continue;
        }
        const std::int64_t out = fixed_output_len ? *fixed_output_len : output_lens[rows.size()];
        rows.push_back({prompts[p], lens[p], out});
        misses = 0;
    }
    return rows;
}

}  // namespace dsserve::bench
