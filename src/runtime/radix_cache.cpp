#include "runtime/radix_cache.h"

#include <algorithm>
#include <queue>

#include "core/error.h"

namespace dsserve::runtime {

RadixCache::RadixCache(KvPool& pool) : pool_(pool), root_(std::make_unique<Node>()) {
    root_->lock_ref = 1;  // the root is never evicted
}

RadixCache::~RadixCache() = default;

RadixCache::Match RadixCache::match(std::span<const std::int32_t> tokens) {
    const std::size_t ps = static_cast<std::size_t>(pool_.page_size());
    Match m;
    Node* node = root_.get();
    std::size_t pos = 0;
    node->last_access = ++clock_;
    while (pos + ps <= tokens.size()) {
        std::vector<std::int32_t> key(tokens.begin() + static_cast<std::ptrdiff_t>(pos),
                                      tokens.begin() + static_cast<std::ptrdiff_t>(pos + ps));
        auto it = node->children.find(key);
        if (it == node->children.end()) {
            break;
        }
        Node* child = it->second.get();
        std::size_t pages = 0;
        while (pages < child->pages.size() && pos + (pages + 1) * ps <= tokens.size() &&
               std::equal(child->tokens.begin() + static_cast<std::ptrdiff_t>(pages * ps),
                          child->tokens.begin() + static_cast<std::ptrdiff_t>((pages + 1) * ps),
                          tokens.begin() + static_cast<std::ptrdiff_t>(pos + pages * ps))) {
            ++pages;
        }
        if (pages < child->pages.size()) {
            child = split(child, pages);
        }
        child->last_access = ++clock_;
        m.pages.insert(m.pages.end(), child->pages.begin(), child->pages.end());
        pos += pages * ps;
        node = child;
        if (pages == 0) {
            break;
        }
    }
    m.node = node;
    return m;
}

RadixCache::Node* RadixCache::split(Node* node, std::size_t pages_kept) {
    DS_ASSERT(pages_kept > 0 && pages_kept < node->pages.size(), pages_kept);
    const std::size_t ps = static_cast<std::size_t>(pool_.page_size());
    Node* parent = node->parent;
    std::vector<std::int32_t> key(node->tokens.begin(),
                                  node->tokens.begin() + static_cast<std::ptrdiff_t>(ps));
    std::unique_ptr<Node> owned = std::move(parent->children[key]);
    auto head = std::make_unique<Node>();
    head->tokens.assign(node->tokens.begin(),
                        node->tokens.begin() + static_cast<std::ptrdiff_t>(pages_kept * ps));
    head->pages.assign(node->pages.begin(),
                       node->pages.begin() + static_cast<std::ptrdiff_t>(pages_kept));
    head->parent = parent;
    head->lock_ref = node->lock_ref;
    head->last_access = node->last_access;
    node->tokens.erase(node->tokens.begin(),
                       node->tokens.begin() + static_cast<std::ptrdiff_t>(pages_kept * ps));
    node->pages.erase(node->pages.begin(),
                      node->pages.begin() + static_cast<std::ptrdiff_t>(pages_kept));
    node->parent = head.get();
    std::vector<std::int32_t> tail_key(node->tokens.begin(),
                                       node->tokens.begin() + static_cast<std::ptrdiff_t>(ps));
    head->children[tail_key] = std::move(owned);
    Node* result = head.get();
    parent->children[key] = std::move(head);
    return result;
}

RadixCache::Node* RadixCache::insert(std::span<const std::int32_t> tokens,
                                     const std::vector<std::int32_t>& pages) {
    const std::size_t ps = static_cast<std::size_t>(pool_.page_size());
    DS_ASSERT(tokens.size() >= pages.size() * ps, tokens.size(), " ", pages.size());
    auto m = match(tokens.subspan(0, pages.size() * ps));
    // Pages the tree already holds: the request's copies are redundant.
    for (std::size_t i = 0; i < m.pages.size(); ++i) {
        if (pages[i] != m.pages[i]) {
            pool_.release(pages[i]);
        }
    }
    Node* node = m.node;
    if (m.pages.size() < pages.size()) {
        auto child = std::make_unique<Node>();
        std::size_t from = m.pages.size();
        child->tokens.assign(tokens.begin() + static_cast<std::ptrdiff_t>(from * ps),
                             tokens.begin() + static_cast<std::ptrdiff_t>(pages.size() * ps));
        child->pages.assign(pages.begin() + static_cast<std::ptrdiff_t>(from), pages.end());
        child->parent = node;
        child->last_access = ++clock_;
        cached_pages_ += static_cast<std::int32_t>(child->pages.size());
        std::vector<std::int32_t> key(child->tokens.begin(),
                                      child->tokens.begin() + static_cast<std::ptrdiff_t>(ps));
        Node* raw = child.get();
        node->children[key] = std::move(child);
        node = raw;
    }
    return node;
}

void RadixCache::lock(Node* node) {
    for (; node != nullptr && node != root_.get(); node = node->parent) {
        if (node->lock_ref++ == 0) {
            pinned_pages_ += static_cast<std::int32_t>(node->pages.size());
        }
    }
}

void RadixCache::unlock(Node* node) {
    for (; node != nullptr && node != root_.get(); node = node->parent) {
        DS_ASSERT(node->lock_ref > 0, "unbalanced unlock");
        if (--node->lock_ref == 0) {
            pinned_pages_ -= static_cast<std::int32_t>(node->pages.size());
        }
    }
}

void RadixCache::remove_leaf(Node* node) {
    pool_.release(node->pages);
    cached_pages_ -= static_cast<std::int32_t>(node->pages.size());
    const std::size_t ps = static_cast<std::size_t>(pool_.page_size());
    std::vector<std::int32_t> key(node->tokens.begin(),
                                  node->tokens.begin() + static_cast<std::ptrdiff_t>(ps));
    node->parent->children.erase(key);
}

std::int32_t RadixCache::evict(std::int32_t n) {
    auto older = [](Node* a, Node* b) { return a->last_access > b->last_access; };
    std::priority_queue<Node*, std::vector<Node*>, decltype(older)> leaves(older);
    std::vector<Node*> stack{root_.get()};
    while (!stack.empty()) {
        Node* node = stack.back();
        stack.pop_back();
        for (auto& [key, child] : node->children) {
            stack.push_back(child.get());
        }
        if (node->children.empty() && node->lock_ref == 0 && node != root_.get()) {
            leaves.push(node);
        }
    }
    std::int32_t freed = 0;
    while (freed < n && !leaves.empty()) {
        Node* leaf = leaves.top();
        leaves.pop();
        Node* parent = leaf->parent;
        freed += static_cast<std::int32_t>(leaf->pages.size());
        remove_leaf(leaf);
        if (parent != root_.get() && parent->children.empty() && parent->lock_ref == 0) {
            leaves.push(parent);
        }
    }
    return freed;
}

void RadixCache::clear() {
    evict(cached_pages_);
}

}  // namespace dsserve::runtime
