#include "test_data.h"

#include <map>
#include <mutex>

#include "core/file.h"

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
