// The paged KV pool: fixed-size pages of cache slots, handed out and returned as whole pages.
// Page p owns slots [p * page_size, (p + 1) * page_size). Who holds a page is the caller's
// business (requests and the radix cache); the pool only counts.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace dsserve::runtime {

class KvPool {
public:
    KvPool(std::int32_t num_pages, std::int32_t page_size);

    std::int32_t page_size() const { return page_size_; }
    std::int32_t num_pages() const { return num_pages_; }
    std::int32_t num_slots() const { return num_pages_ * page_size_; }
    std::int32_t free_pages() const { return static_cast<std::int32_t>(free_.size()); }

    // n pages, or nothing if fewer than n are free (never a partial allocation).
    std::optional<std::vector<std::int32_t>> allocate(std::int32_t n);
    void release(const std::vector<std::int32_t>& pages);
    void release(std::int32_t page);

    std::int32_t slot(std::int32_t page, std::int32_t offset) const {
        return page * page_size_ + offset;
    }

private:
    std::int32_t num_pages_;
    std::int32_t page_size_;
    std::vector<std::int32_t> free_;
    std::vector<char> in_use_;
};

}  // namespace dsserve::runtime
