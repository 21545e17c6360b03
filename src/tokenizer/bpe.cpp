#include "tokenizer/bpe.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <queue>

#include "core/error.h"
#include "tokenizer/byte_level.h"

namespace dsserve::tokenizer {
namespace {

constexpr std::int32_t kNoMerge = INT32_MAX;
// Pieces up to this many bytes merge with a linear scan over cached pair ranks; longer ones
// (long runs of spaces or letters) use a heap, which keeps them O(n log n).
constexpr std::size_t kSmallPieceBytes = 128;

// A merge is "left right" (one space; byte-level symbols never contain a plain space) or, in
// newer files, a two-element array. The views point into `merge`.
std::pair<std::string_view, std::string_view> split_merge(const nlohmann::json& merge) {
    if (merge.is_array()) {
        DS_CHECK(merge.size() == 2 && merge[0].is_string() && merge[1].is_string(),
                 "tokenizer.json: a merge must have two parts");
        return {merge[0].get_ref<const std::string&>(), merge[1].get_ref<const std::string&>()};
    }
    DS_CHECK(merge.is_string(), "tokenizer.json: a merge must be a string or a pair");
    const std::string_view line = merge.get_ref<const std::string&>();
    const std::size_t space = line.find(' ');
    DS_CHECK(space != std::string_view::npos && line.find(' ', space + 1) == std::string_view::npos,
             "tokenizer.json: merge '", line, "' is not two space-separated tokens");
    return {line.substr(0, space), line.substr(space + 1)};
}

void check_option_absent(const nlohmann::json& model, const char* key) {
    const auto it = model.find(key);
    DS_CHECK(it == model.end() || it->is_null() || (it->is_boolean() && !it->get<bool>()),
             "tokenizer.json: BPE option '", key, "' is not supported");
}

}  // namespace

void MergeTable::reserve(std::size_t num_merges) {
    std::size_t capacity = 16;
    while (capacity < num_merges * 2) {
        capacity *= 2;
    }
    entries_.assign(capacity, Entry{kEmpty, {0, 0}});
    mask_ = capacity - 1;
    size_ = 0;
}

void MergeTable::insert(std::int32_t left, std::int32_t right, Merge merge) {
    DS_ASSERT(size_ * 2 < entries_.size(), "MergeTable::reserve was too small");
    const std::uint64_t key = pack(left, right);
    for (std::size_t slot = hash(key) & mask_;; slot = (slot + 1) & mask_) {
        Entry& e = entries_[slot];
        if (e.key == key) {
            e.merge = merge;
            return;
        }
        if (e.key == kEmpty) {
            e = Entry{key, merge};
            ++size_;
            return;
        }
    }
}

namespace {

// FNV-1a: pieces are a few bytes long, where a simple byte loop beats the library hash.
std::uint64_t hash_piece(std::string_view piece) {
    std::uint64_t h = 0xCBF29CE484222325ULL;
    for (char c : piece) {
        h = (h ^ static_cast<unsigned char>(c)) * 0x100000001B3ULL;
    }
    return h ^ (h >> 29);
}

}  // namespace

bool PieceCache::lookup(std::string_view piece, std::vector<std::int32_t>& out) const {
    const std::uint64_t h = hash_piece(piece);
    Shard& shard = shards_[h % kNumShards];
    const Entry& e = shard.entries[(h / kNumShards) % kEntriesPerShard];
    const auto tag = static_cast<std::uint32_t>(h >> 32);
    std::lock_guard lock(shard.mutex);
    if (e.num_ids == 0 || e.tag != tag || e.key_length != piece.size() ||
        std::memcmp(e.key, piece.data(), piece.size()) != 0) {
        return false;
    }
    out.insert(out.end(), e.ids, e.ids + e.num_ids);
    return true;
}

void PieceCache::insert(std::string_view piece, const std::int32_t* ids, std::size_t num_ids) {
    if (piece.size() > kMaxPieceBytes || num_ids == 0 || num_ids > kMaxIds) {
        return;
    }
    const std::uint64_t h = hash_piece(piece);
    Shard& shard = shards_[h % kNumShards];
    Entry& e = shard.entries[(h / kNumShards) % kEntriesPerShard];
    std::lock_guard lock(shard.mutex);
    e.tag = static_cast<std::uint32_t>(h >> 32);
    e.key_length = static_cast<std::uint8_t>(piece.size());
    e.num_ids = static_cast<std::uint8_t>(num_ids);
    std::memcpy(e.key, piece.data(), piece.size());
    std::memcpy(e.ids, ids, num_ids * sizeof(std::int32_t));
}

std::size_t PieceCache::size() const {
    std::size_t total = 0;
    for (const Shard& shard : shards_) {
        std::lock_guard lock(shard.mutex);
        for (const Entry& e : shard.entries) {
            total += e.num_ids != 0;
        }
    }
    return total;
}

std::unique_ptr<BpeModel> BpeModel::from_json(const nlohmann::json& model) {
    DS_CHECK(model.value("type", "") == "BPE", "tokenizer.json: model type must be BPE");
    for (const char* key : {"dropout", "unk_token", "continuing_subword_prefix",
                            "end_of_word_suffix", "fuse_unk", "byte_fallback", "ignore_merges"}) {
        check_option_absent(model, key);
    }
    auto bpe = std::make_unique<BpeModel>();
    const auto& vocab = model.at("vocab");
    DS_CHECK(vocab.is_object(), "tokenizer.json: model.vocab must be an object");
    bpe->vocab_.reserve(vocab.size());
    for (const auto& [token, id_json] : vocab.items()) {
        const auto id = id_json.get<std::int64_t>();
        DS_CHECK(id >= 0 && id < (1 << 24), "tokenizer.json: vocab id ", id, " out of range");
        bpe->vocab_.emplace(token, static_cast<std::int32_t>(id));
        if (static_cast<std::size_t>(id) >= bpe->tokens_.size()) {
            bpe->tokens_.resize(id + 1);
        }
        bpe->tokens_[id] = token;
    }
    // Byte-level BPE needs every byte as a token of its own, or some text could not be encoded.
    for (int b = 0; b < 256; ++b) {
        const std::string symbol = bytes_to_symbols(std::string(1, static_cast<char>(b)));
        const auto id = bpe->token_to_id(symbol);
        DS_CHECK(id.has_value(), "tokenizer.json: vocab lacks the byte-level symbol of byte ", b);
        bpe->byte_ids_[b] = *id;
    }
    const auto& merges = model.at("merges");
    bpe->merges_.reserve(merges.size());
    std::int32_t rank = 0;
    std::string joined;
    for (const auto& merge : merges) {
        const auto [left, right] = split_merge(merge);
        joined.assign(left).append(right);
        const auto left_id = bpe->token_to_id(left);
        const auto right_id = bpe->token_to_id(right);
        const auto merged_id = bpe->token_to_id(joined);
        DS_CHECK(left_id && right_id && merged_id, "tokenizer.json: merge '", left, " ", right,
                 "' uses a token missing from the vocab");
        bpe->merges_.insert(*left_id, *right_id, {rank++, *merged_id});
    }
    return bpe;
}

std::optional<std::int32_t> BpeModel::token_to_id(std::string_view token) const {
    const auto it = vocab_.find(token);
    if (it == vocab_.end()) {
        return std::nullopt;
    }
    return it->second;
}

const std::string& BpeModel::token(std::int32_t id) const {
    static const std::string kNone;
    if (id < 0 || static_cast<std::size_t>(id) >= tokens_.size()) {
        return kNone;
    }
    return tokens_[id];
}

void BpeModel::encode_piece(std::string_view bytes, std::vector<std::int32_t>& out) const {
    if (bytes.size() == 1) {
        out.push_back(byte_ids_[static_cast<unsigned char>(bytes[0])]);
        return;
    }
    const bool cacheable = bytes.size() <= PieceCache::kMaxPieceBytes;
    if (cacheable && cache_.lookup(bytes, out)) {
        return;
    }
    const std::size_t first = out.size();
    encode_piece_uncached(bytes, out);
    if (cacheable) {
        cache_.insert(bytes, out.data() + first, out.size() - first);
    }
}

void BpeModel::encode_piece_uncached(std::string_view bytes, std::vector<std::int32_t>& out) const {
    thread_local std::vector<std::int32_t> symbols;
    symbols.clear();
    for (char b : bytes) {
        symbols.push_back(byte_ids_[static_cast<unsigned char>(b)]);
    }
    if (symbols.size() <= kSmallPieceBytes) {
        merge_small(symbols);
    } else {
        merge_large(symbols);
    }
    out.insert(out.end(), symbols.begin(), symbols.end());
    if (symbols.capacity() > (1 << 16)) {
        std::vector<std::int32_t>().swap(symbols);  // do not pin one huge piece's buffer
    }
}

void BpeModel::merge_small(std::vector<std::int32_t>& symbols) const {
    // rank[i] and merged[i] describe the pair (symbols[i], symbols[i + 1]); only the two pairs
    // next to a merge change, so only they are looked up again.
    std::size_t n = symbols.size();
    std::int32_t rank[kSmallPieceBytes];
    std::int32_t merged[kSmallPieceBytes];
    auto look_up = [&](std::size_t i) {
        const MergeTable::Merge* m = merges_.find(symbols[i], symbols[i + 1]);
        rank[i] = m ? m->rank : kNoMerge;
        merged[i] = m ? m->merged_id : -1;
    };
    for (std::size_t i = 0; i + 1 < n; ++i) {
        look_up(i);
    }
    while (n > 1) {
        std::size_t best = 0;
        for (std::size_t i = 1; i + 1 < n; ++i) {
            if (rank[i] < rank[best]) {
                best = i;
            }
        }
        if (rank[best] == kNoMerge) {
            break;
        }
        symbols[best] = merged[best];
        // Drop symbol best + 1 and the pair that started at it.
        const std::size_t tail = n - best - 2;
        std::memmove(&symbols[best + 1], &symbols[best + 2], tail * sizeof(std::int32_t));
        std::memmove(&rank[best + 1], &rank[best + 2],
                     (tail > 0 ? tail - 1 : 0) * sizeof(std::int32_t));
        std::memmove(&merged[best + 1], &merged[best + 2],
                     (tail > 0 ? tail - 1 : 0) * sizeof(std::int32_t));
        --n;
        if (best > 0) {
            look_up(best - 1);
        }
        if (best + 1 < n) {
            look_up(best);
        }
    }
    symbols.resize(n);
}

void BpeModel::merge_large(std::vector<std::int32_t>& symbols) const {
    // A doubly linked list over the original positions and a min-heap of candidate merges
    // ordered by (rank, position). An entry is stale when either symbol has changed since it
    // was pushed; it is then skipped.
    const std::size_t n = symbols.size();
    std::vector<std::int32_t> prev(n), next(n);
    std::vector<bool> alive(n, true);
    for (std::size_t i = 0; i < n; ++i) {
        prev[i] = static_cast<std::int32_t>(i) - 1;
        next[i] = i + 1 < n ? static_cast<std::int32_t>(i + 1) : -1;
    }
    struct Candidate {
        std::int32_t rank;
        std::int32_t pos;
        bool operator>(const Candidate& o) const {
            return rank != o.rank ? rank > o.rank : pos > o.pos;
        }
    };
    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
    auto push = [&](std::int32_t pos) {
        if (pos < 0 || next[pos] < 0) {
            return;
        }
        if (const MergeTable::Merge* m = merges_.find(symbols[pos], symbols[next[pos]])) {
            heap.push({m->rank, pos});
        }
    };
    for (std::size_t i = 0; i + 1 < n; ++i) {
        push(static_cast<std::int32_t>(i));
    }
    while (!heap.empty()) {
        const Candidate top = heap.top();
        heap.pop();
        const std::int32_t pos = top.pos;
        if (!alive[pos] || next[pos] < 0) {
            continue;
        }
        const std::int32_t right = next[pos];
        const MergeTable::Merge* m = merges_.find(symbols[pos], symbols[right]);
        if (m == nullptr || m->rank != top.rank) {
            continue;
        }
        symbols[pos] = m->merged_id;
        alive[right] = false;
        next[pos] = next[right];
        if (next[pos] >= 0) {
            prev[next[pos]] = pos;
        }
        push(prev[pos]);
        push(pos);
    }
    std::size_t out = 0;
    for (std::int32_t i = 0; i >= 0; i = next[i]) {
        symbols[out++] = symbols[i];
    }
    symbols.resize(out);
}

}  // namespace dsserve::tokenizer
