// The BPE model of a byte-level tokenizer.json: a vocab of byte-level symbol strings and merges
// ranked by their order. A piece's bytes start as one symbol each; the adjacent pair with the
// lowest merge rank is merged, the leftmost one on ties, until no pair has a merge. This is the
// order HF `tokenizers` merges in (its heap pops the lowest rank, then the lowest position).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/json.h"

namespace dsserve::tokenizer {

// Merge ranks keyed by the pair of token ids, in one flat open-addressing table: the merge loop
// looks a pair up for every adjacent position it considers.
class MergeTable {
public:
    struct Merge {
        std::int32_t rank;
        std::int32_t merged_id;
    };

    void reserve(std::size_t num_merges);
    // A pair listed twice keeps the later rank, as HF's map built from the list does.
    void insert(std::int32_t left, std::int32_t right, Merge merge);
    const Merge* find(std::int32_t left, std::int32_t right) const {
        const std::uint64_t key = pack(left, right);
        for (std::size_t slot = hash(key) & mask_;; slot = (slot + 1) & mask_) {
            const Entry& e = entries_[slot];
            if (e.key == key) {
                return &e.merge;
            }
            if (e.key == kEmpty) {
                return nullptr;
            }
        }
    }
    std::size_t size() const { return size_; }

private:
    struct Entry {
        std::uint64_t key;
        Merge merge;
    };
    static constexpr std::uint64_t kEmpty = ~std::uint64_t{0};

    static std::uint64_t pack(std::int32_t left, std::int32_t right) {
        return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32) |
               static_cast<std::uint32_t>(right);
    }
    static std::size_t hash(std::uint64_t key) {
        return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ULL) >> 20);
    }

    std::vector<Entry> entries_;
    std::size_t mask_ = 0;
    std::size_t size_ = 0;
};

// Piece -> ids, shared by all threads: a fixed-size direct-mapped table (a new piece replaces
// whatever shared its slot), so memory is bounded and a lookup touches one 64-byte entry with
// no allocation. Split into shards with a mutex each, so that threads rarely wait on one
// another. Only short pieces with few ids are kept; they are nearly all of the traffic.
class PieceCache {
public:
    static constexpr std::size_t kMaxPieceBytes = 26;
    static constexpr std::size_t kMaxIds = 8;

    bool lookup(std::string_view piece, std::vector<std::int32_t>& out) const;
    void insert(std::string_view piece, const std::int32_t* ids, std::size_t num_ids);
    std::size_t size() const;  // occupied entries

private:
    static constexpr std::size_t kNumShards = 32;
    static constexpr std::size_t kEntriesPerShard = 2048;  // 4 MiB in all

    struct Entry {
        std::uint32_t tag = 0;  // high bits of the hash, to reject most misses early
        std::uint8_t key_length = 0;
        std::uint8_t num_ids = 0;  // 0: empty
        char key[kMaxPieceBytes];
        std::int32_t ids[kMaxIds];
    };
    static_assert(sizeof(Entry) == 64);

    struct Shard {
        mutable std::mutex mutex;
        std::array<Entry, kEntriesPerShard> entries;
    };

    mutable std::array<Shard, kNumShards> shards_;
};

class BpeModel {
public:
    // From tokenizer.json's "model"; throws Error for options it does not implement.
    static std::unique_ptr<BpeModel> from_json(const nlohmann::json& model);

    // Appends the ids of one pre-tokenized piece, given as raw bytes.
    void encode_piece(std::string_view bytes, std::vector<std::int32_t>& out) const;
    // The same without the cache, for tests and benchmarks.
    void encode_piece_uncached(std::string_view bytes, std::vector<std::int32_t>& out) const;

    std::optional<std::int32_t> token_to_id(std::string_view token) const;
    // The vocab entry (byte-level symbols) of an id; empty if the vocab has no such id.
    const std::string& token(std::int32_t id) const;
    // Highest id + 1.
    std::size_t size() const { return tokens_.size(); }
    const MergeTable& merges() const { return merges_; }

private:
    void merge_small(std::vector<std::int32_t>& symbols) const;
    void merge_large(std::vector<std::int32_t>& symbols) const;

    struct StringHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const {
            return std::hash<std::string_view>{}(s);
        }
    };
    std::unordered_map<std::string, std::int32_t, StringHash, std::equal_to<>> vocab_;
    std::vector<std::string> tokens_;
    std::array<std::int32_t, 256> byte_ids_{};
    MergeTable merges_;
    mutable PieceCache cache_;  // a memo: encoding results do not depend on it
};

}  // namespace dsserve::tokenizer
