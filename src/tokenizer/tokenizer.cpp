#include "tokenizer/tokenizer.h"

#include <unordered_map>
#include <unordered_set>

#include "core/error.h"
#include "core/file.h"
#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/utf8.h"

namespace dsserve::tokenizer {

struct Tokenizer::Impl {
    Json config;
    std::unique_ptr<BpeModel> model;
    PreTokenizer pre_tokenizer;
    AddedTokenMatcher raw_matcher;         // added tokens with normalized=false
    AddedTokenMatcher normalized_matcher;  // the others
    std::unordered_map<std::string, std::int32_t> added_ids;
    // Per id: the bytes it decodes to and what it is.
    std::vector<std::string> bytes;
    std::vector<bool> known;
    std::vector<bool> special;
    std::int32_t bos_id = -1;
    std::int32_t eos_id = -1;
    bool add_bos = false;
    bool add_eos = false;

    std::optional<std::int32_t> token_to_id(std::string_view token) const {
        if (const auto it = added_ids.find(std::string(token)); it != added_ids.end()) {
            return it->second;
        }
        return model->token_to_id(token);
    }
};

namespace {

void check_components(const nlohmann::json& j) {
    for (const char* key : {"truncation", "padding"}) {
        DS_CHECK(!j.contains(key) || j.at(key).is_null(), "tokenizer.json: '", key,
                 "' is not supported");
    }
    // The identity normalizer: none, or an empty Sequence.
    if (const auto& n = j.value("normalizer", nlohmann::json()); !n.is_null()) {
        DS_CHECK(n.value("type", "") == "Sequence" &&
                     n.value("normalizers", nlohmann::json::array()).empty(),
                 "tokenizer.json: normalizer '", n.value("type", "?"),
                 "' is not supported (only none or an empty Sequence)");
    }
    // The ByteLevel post-processor only adjusts offsets; ids are unchanged.
    if (const auto& p = j.value("post_processor", nlohmann::json()); !p.is_null()) {
        DS_CHECK(p.value("type", "") == "ByteLevel", "tokenizer.json: post_processor '",
                 p.value("type", "?"), "' is not supported (only ByteLevel)");
    }
    const auto& d = j.value("decoder", nlohmann::json());
    DS_CHECK(d.is_object() && d.value("type", "") == "ByteLevel", "tokenizer.json: decoder '",
             d.is_object() ? d.value("type", "?") : "none", "' is not supported (only ByteLevel)");
}

// A special token in tokenizer_config.json: a plain string or an AddedToken object.
std::optional<std::string> config_token(const Json& config, const char* key) {
    const auto it = config.find(key);
    if (it == config.end() || it->is_null()) {
        return std::nullopt;
    }
    if (it->is_string()) {
        return it->get<std::string>();
    }
    DS_CHECK(it->is_object() && it->contains("content") && it->at("content").is_string(),
             "tokenizer_config.json: '", key, "' must be a string or have a 'content' string");
    return it->at("content").get<std::string>();
}

bool config_flag(const Json& config, const char* key) {
    const auto it = config.find(key);
    if (it == config.end() || it->is_null()) {
        return false;
    }
    DS_CHECK(it->is_boolean(), "tokenizer_config.json: '", key, "' must be true or false");
    return it->get<bool>();
}

std::shared_ptr<Tokenizer::Impl> build(const nlohmann::json& j, Json config) {
    check_components(j);
    auto impl = std::make_shared<Tokenizer::Impl>();
    impl->config = std::move(config);
    impl->model = BpeModel::from_json(j.at("model"));
    impl->pre_tokenizer = PreTokenizer::from_json(j.at("pre_tokenizer"));

    std::vector<AddedToken> raw, normalized;
    std::unordered_set<std::string> special_contents;
    std::size_t size = impl->model->size();
    std::vector<AddedToken> added;
    for (const auto& t : j.value("added_tokens", nlohmann::json::array())) {
        AddedToken token;
        const auto id = t.at("id").get<std::int64_t>();
        DS_CHECK(id >= 0 && id < (1 << 24), "tokenizer.json: added token id ", id, " out of range");
        token.id = static_cast<std::int32_t>(id);
        token.content = t.at("content").get<std::string>();
        token.single_word = t.value("single_word", false);
        token.lstrip = t.value("lstrip", false);
        token.rstrip = t.value("rstrip", false);
        token.normalized = t.value("normalized", true);
        token.special = t.value("special", false);
        DS_CHECK(!token.content.empty(), "tokenizer.json: added token ", id, " is empty");
        DS_CHECK(is_valid_utf8(token.content), "tokenizer.json: added token ", id,
                 " is not valid UTF-8");
        size = std::max(size, static_cast<std::size_t>(id) + 1);
        if (token.special) {
            special_contents.insert(token.content);
        }
        impl->added_ids[token.content] = token.id;
        (token.normalized ? normalized : raw).push_back(token);
        added.push_back(std::move(token));
    }
    impl->raw_matcher = AddedTokenMatcher(raw);
    impl->normalized_matcher = AddedTokenMatcher(normalized);

    // What each id decodes to. HF's ByteLevel decoder maps a token's symbols back to bytes; a
    // token with a character outside the byte alphabet (like "<｜User｜>") is taken as its own
    // UTF-8. Special is decided by content, as HF does when it skips special tokens.
    impl->bytes.resize(size);
    impl->known.assign(size, false);
    impl->special.assign(size, false);
    auto set_token = [&](std::int32_t id, const std::string& token) {
        impl->bytes[id] = symbols_to_bytes(token).value_or(token);
        impl->known[id] = true;
        impl->special[id] = special_contents.contains(token);
    };
    for (std::size_t id = 0; id < impl->model->size(); ++id) {
        const std::string& token = impl->model->token(static_cast<std::int32_t>(id));
        if (!token.empty()) {
            set_token(static_cast<std::int32_t>(id), token);
        }
    }
    for (const AddedToken& token : added) {
        set_token(token.id, token.content);  // an added token overrides the vocab entry
    }

    impl->add_bos = config_flag(impl->config, "add_bos_token");
    impl->add_eos = config_flag(impl->config, "add_eos_token");
    auto resolve = [&](const char* key, bool required) {
        const auto content = config_token(impl->config, key);
        if (!content) {
            DS_CHECK(!required, "tokenizer_config.json: '", key, "' is needed but missing");
            return -1;
        }
        const auto id = impl->token_to_id(*content);
        DS_CHECK(id.has_value(), "tokenizer_config.json: ", key, " '", *content,
                 "' is not in the vocab");
        return *id;
    };
    impl->bos_id = resolve("bos_token", impl->add_bos);
    impl->eos_id = resolve("eos_token", impl->add_eos);
    return impl;
}

nlohmann::json parse_json(std::string_view text, const char* what) {
    try {
        return nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        fail(what, " is not valid JSON: ", e.what());
    }
}

// Buffers encode() reuses on each thread. One huge text should not pin its buffers for the
// thread's lifetime, so they are released once they grow past kMaxKept elements.
struct EncodeScratch {
    static constexpr std::size_t kMaxKept = 1 << 16;

    std::vector<Segment> raw_segments;
    std::vector<Segment> segments;
    std::vector<Span> pieces;
    SplitScratch split;

    void trim() {
        release_if_large(raw_segments);
        release_if_large(segments);
        release_if_large(pieces);
        release_if_large(split.first);
        release_if_large(split.second);
    }
    template <typename T>
    static void release_if_large(std::vector<T>& v) {
        if (v.capacity() > kMaxKept) {
            std::vector<T>().swap(v);
        }
    }
};

}  // namespace

Tokenizer Tokenizer::load(const std::filesystem::path& dir) {
    const auto tokenizer_path = dir / "tokenizer.json";
    const auto config_path = dir / "tokenizer_config.json";
    DS_CHECK(std::filesystem::is_regular_file(tokenizer_path), "no tokenizer.json in ",
             dir.string());
    DS_CHECK(std::filesystem::is_regular_file(config_path), "no tokenizer_config.json in ",
             dir.string());
    try {
        return from_json(read_file(tokenizer_path), read_file(config_path));
    } catch (const Error& e) {
        fail("loading the tokenizer from ", dir.string(), ": ", e.what());
    } catch (const nlohmann::json::exception& e) {
        fail("loading the tokenizer from ", dir.string(), ": ", e.what());
    }
}

Tokenizer Tokenizer::from_json(std::string_view tokenizer_json, std::string_view config_json) {
    const nlohmann::json j = parse_json(tokenizer_json, "tokenizer.json");
    DS_CHECK(j.is_object(), "tokenizer.json must hold an object");
    Json config;
    try {
        config = Json::parse(config_json);
    } catch (const Json::exception& e) {
        fail("tokenizer_config.json is not valid JSON: ", e.what());
    }
    DS_CHECK(config.is_object(), "tokenizer_config.json must hold an object");
    try {
        return Tokenizer(build(j, std::move(config)));
    } catch (const nlohmann::json::exception& e) {
        fail("tokenizer.json has an unexpected shape: ", e.what());
    }
}

std::vector<std::int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
    const Impl& impl = *impl_;
    std::string repaired;
    if (!is_valid_utf8(text)) {
        repaired = to_utf8_lossy(text);
        text = repaired;
    }
    thread_local EncodeScratch scratch;
    std::vector<std::int32_t> ids;
    ids.reserve(text.size() / 3 + 4);
    if (add_special_tokens && impl.add_bos) {
        ids.push_back(impl.bos_id);
    }
    scratch.raw_segments.clear();
    impl.raw_matcher.split(text, 0, text.size(), scratch.raw_segments);
    for (const Segment& raw : scratch.raw_segments) {
        if (raw.id != Segment::kTextSegment) {
            ids.push_back(raw.id);
            continue;
        }
        scratch.segments.clear();
        impl.normalized_matcher.split(text, raw.begin, raw.end, scratch.segments);
        for (const Segment& segment : scratch.segments) {
            if (segment.id != Segment::kTextSegment) {
                ids.push_back(segment.id);
                continue;
            }
            scratch.pieces.clear();
            impl.pre_tokenizer.split(text, {segment.begin, segment.end}, scratch.pieces,
                                     scratch.split);
            for (const Span& piece : scratch.pieces) {
                impl.model->encode_piece(text.substr(piece.begin, piece.end - piece.begin), ids);
            }
        }
    }
    if (add_special_tokens && impl.add_eos) {
        ids.push_back(impl.eos_id);
    }
    scratch.trim();
    return ids;
}

std::string Tokenizer::decode(std::span<const std::int32_t> ids, bool skip_special_tokens) const {
    std::string bytes;
    for (std::int32_t id : ids) {
        if (has_id(id) && !(skip_special_tokens && impl_->special[id])) {
            bytes += impl_->bytes[id];
        }
    }
    if (is_valid_utf8(bytes)) {
        return bytes;
    }
    return to_utf8_lossy(bytes);
}

std::optional<std::int32_t> Tokenizer::token_to_id(std::string_view token) const {
    return impl_->token_to_id(token);
}

std::string Tokenizer::token_bytes(std::int32_t id) const {
    DS_CHECK(has_id(id), "token id ", id, " is not in the vocab");
    return impl_->bytes[id];
}

std::string_view Tokenizer::bytes_of(std::int32_t id) const {
    return has_id(id) ? std::string_view(impl_->bytes[id]) : std::string_view();
}

bool Tokenizer::has_id(std::int32_t id) const {
    return id >= 0 && static_cast<std::size_t>(id) < impl_->known.size() && impl_->known[id];
}

bool Tokenizer::is_special(std::int32_t id) const {
    return has_id(id) && impl_->special[id];
}

std::int32_t Tokenizer::bos_id() const {
    return impl_->bos_id;
}
std::int32_t Tokenizer::eos_id() const {
    return impl_->eos_id;
}
bool Tokenizer::add_bos_token() const {
    return impl_->add_bos;
}
bool Tokenizer::add_eos_token() const {
    return impl_->add_eos;
}
std::size_t Tokenizer::vocab_size() const {
    return impl_->bytes.size();
}
const Json& Tokenizer::config() const {
    return impl_->config;
}

}  // namespace dsserve::tokenizer
