// RadixAttention's prefix cache (SGLang, arXiv 2312.07104) over pages: a radix tree keyed by token
// ids whose edges hold whole pages. Requests that share a prefix — a system prompt, earlier turns,
// the n choices of one request — reuse its pages instead of recomputing them.
//
// Invariants: a matched prefix stays pinned (lock) until released; eviction only frees pages of
// unpinned leaves, least recently used first; every page is owned either by the tree or by exactly
// one request, never both.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <vector>

#include "runtime/kv_pool.h"

namespace dsserve::runtime {

class RadixCache {
public:
    struct Node;

    explicit RadixCache(KvPool& pool);
    ~RadixCache();

    struct Match {
        std::vector<std::int32_t> pages;  // the cached pages of the longest page-aligned prefix
        Node* node = nullptr;             // lock this to pin them
    };
    // Longest cached prefix of tokens, in whole pages.
    Match match(std::span<const std::int32_t> tokens);

    // Hands pages holding tokens[0 : pages.size() * page_size) to the tree. Pages whose tokens the
    // tree already holds are returned to the pool. Returns the node at the end of the inserted
    // prefix.
    Node* insert(std::span<const std::int32_t> tokens, const std::vector<std::int32_t>& pages);

    void lock(Node* node);
    void unlock(Node* node);

    // Frees at least n pages of unpinned leaves if it can; returns how many it freed.
    std::int32_t evict(std::int32_t n);
    // Drops every unpinned page (flush_cache).
    void clear();

    std::int32_t cached_pages() const { return cached_pages_; }
    std::int32_t evictable_pages() const { return cached_pages_ - pinned_pages_; }

private:
    Node* split(Node* node, std::size_t pages_kept);
    void remove_leaf(Node* node);

    KvPool& pool_;
    std::unique_ptr<Node> root_;
    std::uint64_t clock_ = 0;
    std::int32_t cached_pages_ = 0;
    std::int32_t pinned_pages_ = 0;
};

struct RadixCache::Node {
    std::vector<std::int32_t> tokens;  // edge label: a whole number of pages
    std::vector<std::int32_t> pages;
    std::map<std::vector<std::int32_t>, std::unique_ptr<Node>>
        children;  // keyed by first page's tokens
    Node* parent = nullptr;
    int lock_ref = 0;
    std::uint64_t last_access = 0;
};

}  // namespace dsserve::runtime
