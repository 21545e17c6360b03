#include "test_data.h"

#include <map>
#include <mutex>
#include <tuple>
#include <utility>

#include "core/file.h"
#include "tokenizer/byte_level.h"

namespace dsserve::tokenizer::testing {

std::filesystem::path v32_dir() {
    return std::filesystem::path(DSSERVE_DATA_DIR) / "tokenizer" / "deepseek-v3.2";
}

const Tokenizer& v32() {
    static const Tokenizer tokenizer = Tokenizer::load(v32_dir());
    return tokenizer;
}

// dsserve_test() defines DSSERVE_GOLDEN_DIR from the calling folder (tests/tokenizer/golden)
// rather than tests/golden; accept either until that is settled.
std::filesystem::path golden_dir() {
    const std::filesystem::path defined(DSSERVE_GOLDEN_DIR);
    if (std::filesystem::is_directory(defined / "tokenizer")) {
        return defined;
    }
    return std::filesystem::path(DSSERVE_DATA_DIR).parent_path() / "tests" / "golden";
}

const Json& golden(const std::string& name) {
    static std::mutex mutex;
    static std::map<std::string, Json> cache;
    std::lock_guard lock(mutex);
    auto it = cache.find(name);
    if (it == cache.end()) {
        const auto path = golden_dir() / "tokenizer" / name;
        it = cache.emplace(name, Json::parse(read_file(path))).first;
    }
    return it->second;
}

nlohmann::json tiny_tokenizer_spec() {
    static const nlohmann::json v32_spec =
        nlohmann::json::parse(read_file(v32_dir() / "tokenizer.json"));
    nlohmann::json spec = v32_spec;
    nlohmann::json vocab = nlohmann::json::object();
    for (int b = 0; b < 256; ++b) {
        vocab[bytes_to_symbols(std::string(1, static_cast<char>(b)))] = b + 3;
    }
    nlohmann::json merges = nlohmann::json::array();
    int next = 259;
    for (const auto& [left, right] :
         {std::pair{"H", "e"}, {"l", "l"}, {"He", "ll"}, {"Hell", "o"}}) {
        vocab[std::string(left) + right] = next++;
        merges.push_back(std::string(left) + " " + right);
    }
    spec["model"]["vocab"] = vocab;
    spec["model"]["merges"] = merges;
    spec["added_tokens"] = nlohmann::json::array();
    for (const auto& [id, content, special] : {std::tuple{0, "<｜begin▁of▁sentence｜>", true},
                                               {1, "<｜end▁of▁sentence｜>", true},
                                               {2, "<think>", false}}) {
        spec["added_tokens"].push_back({{"id", id},
                                        {"content", content},
                                        {"single_word", false},
                                        {"lstrip", false},
                                        {"rstrip", false},
                                        {"normalized", !special},
                                        {"special", special}});
    }
    return spec;
}

std::string case_input(const Json& c) {
    if (c.contains("text")) {
        return c.at("text").get<std::string>();
    }
    if (c.contains("file")) {
        return read_file(std::filesystem::path(DSSERVE_DATA_DIR) / c.at("file").get<std::string>());
    }
    const std::string hex = c.at("bytes_hex").get<std::string>();
    std::string bytes;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
        bytes += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
    }
    return bytes;
}

}  // namespace dsserve::tokenizer::testing
