#include "runtime/kv_pool.h"

#include "core/error.h"

namespace dsserve::runtime {

KvPool::KvPool(std::int32_t num_pages, std::int32_t page_size)
    : num_pages_(num_pages),
      page_size_(page_size),
      in_use_(static_cast<std::size_t>(num_pages), 0) {
    DS_ASSERT(num_pages > 0 && page_size > 0, num_pages, " ", page_size);
    free_.reserve(static_cast<std::size_t>(num_pages));
    // Low pages first, so small workloads stay in a compact slot range.
    for (std::int32_t p = num_pages - 1; p >= 0; --p) {
        free_.push_back(p);
    }
}

std::optional<std::vector<std::int32_t>> KvPool::allocate(std::int32_t n) {
    if (n > free_pages()) {
        return std::nullopt;
    }
    std::vector<std::int32_t> pages(free_.end() - n, free_.end());
    free_.resize(free_.size() - static_cast<std::size_t>(n));
    for (auto p : pages) {
        in_use_[static_cast<std::size_t>(p)] = 1;
    }
    return pages;
}

void KvPool::release(std::int32_t page) {
    DS_ASSERT(page >= 0 && page < num_pages_ && in_use_[static_cast<std::size_t>(page)],
              "double free of page ", page);
    in_use_[static_cast<std::size_t>(page)] = 0;
    free_.push_back(page);
}

void KvPool::release(const std::vector<std::int32_t>& pages) {
    for (auto p : pages) {
        release(p);
    }
}

}  // namespace dsserve::runtime
