#include "runtime/radix_cache.h"

#include <gtest/gtest.h>

namespace dsserve::runtime {
namespace {

std::vector<std::int32_t> take(KvPool& pool, int n) {
    return *pool.allocate(n);
}

TEST(RadixCacheTest, MatchesLongestPagePrefixAndSplits) {
    KvPool pool(16, 2);
    RadixCache cache(pool);
    std::vector<std::int32_t> a = {1, 2, 3, 4, 5, 6};
    auto pages_a = take(pool, 3);
    cache.insert(a, pages_a);
    EXPECT_EQ(cache.cached_pages(), 3);

    // Shares two pages, then diverges inside the third: the third page is not reused.
    std::vector<std::int32_t> b = {1, 2, 3, 4, 5, 9, 7};
    auto m = cache.match(b);
    EXPECT_EQ(m.pages, (std::vector<std::int32_t>{pages_a[0], pages_a[1]}));
    // A prefix shorter than a page matches nothing.
    EXPECT_TRUE(cache.match(std::vector<std::int32_t>{1}).pages.empty());
    EXPECT_TRUE(cache.match(std::vector<std::int32_t>{9, 9, 9}).pages.empty());

    // Inserting b's pages: the two shared ones are freed back to the pool, one new page cached.
    auto pages_b = take(pool, 3);
    int free_before = pool.free_pages();
    std::vector<std::int32_t> b_pages = {pages_a[0], pages_a[1], pages_b[2]};
    pool.release(pages_b[0]);
    pool.release(pages_b[1]);
    cache.insert(b, b_pages);
    EXPECT_EQ(cache.cached_pages(), 4);
    EXPECT_EQ(pool.free_pages(), free_before + 2);
    EXPECT_EQ(cache.match(b).pages, b_pages);
    EXPECT_EQ(cache.match(a).pages, pages_a);
}

TEST(RadixCacheTest, LockedPrefixesSurviveEvictionAndLruGoesFirst) {
    KvPool pool(8, 1);
    RadixCache cache(pool);
    std::vector<std::int32_t> old_seq = {1, 2}, new_seq = {3, 4}, pinned = {5, 6};
    cache.insert(old_seq, take(pool, 2));
    cache.insert(new_seq, take(pool, 2));
    auto pin = cache.insert(pinned, take(pool, 2));
    cache.lock(pin);
    cache.match(new_seq);  // touch: now the most recent unpinned
    EXPECT_EQ(cache.evictable_pages(), 4);
    EXPECT_EQ(cache.evict(1), 2);  // the least recently used leaf, whole
    EXPECT_TRUE(cache.match(old_seq).pages.empty());
    EXPECT_EQ(cache.match(new_seq).pages.size(), 2u);
    cache.clear();
    EXPECT_EQ(cache.cached_pages(), 2);  // only the pinned prefix is left
    EXPECT_EQ(cache.match(pinned).pages.size(), 2u);
    cache.unlock(pin);
    cache.clear();
    EXPECT_EQ(cache.cached_pages(), 0);
    EXPECT_EQ(pool.free_pages(), 8);
}

TEST(RadixCacheTest, SplitKeepsLocksConsistent) {
    KvPool pool(8, 1);
    RadixCache cache(pool);
    std::vector<std::int32_t> a = {1, 2, 3, 4};
    auto node = cache.insert(a, take(pool, 4));
    cache.lock(node);
    // Matching a shorter prefix splits the edge; the lock still covers every page.
    EXPECT_EQ(cache.match(std::vector<std::int32_t>{1, 2, 9}).pages.size(), 2u);
    EXPECT_EQ(cache.evictable_pages(), 0);
    cache.unlock(node);
    EXPECT_EQ(cache.evictable_pages(), 4);
}

}  // namespace
}  // namespace dsserve::runtime
