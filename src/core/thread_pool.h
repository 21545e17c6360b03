// A fixed pool of worker threads for data-parallel loops. parallel_for splits [0, n) into
// contiguous chunks, runs them on the workers and the calling thread, and returns when all are
// done. One parallel_for runs at a time per pool; the CPU backend owns one pool.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace dsserve {

class ThreadPool {
public:
    // num_threads counts the caller: 1 means run everything inline.
    explicit ThreadPool(std::size_t num_threads);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    std::size_t size() const { return workers_.size() + 1; }

    // fn(begin, end) is called on disjoint ranges covering [0, n). Chunks are at least min_chunk.
    // An exception thrown by fn on any thread is rethrown here once every chunk has finished.
    void parallel_for(std::size_t n, const std::function<void(std::size_t, std::size_t)>& fn,
                      std::size_t min_chunk = 1);

    static std::size_t default_threads();

private:
    void worker_loop(std::size_t index);

    std::vector<std::thread> workers_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::condition_variable done_;
    const std::function<void(std::size_t, std::size_t)>* job_ = nullptr;
    std::vector<std::pair<std::size_t, std::size_t>> ranges_;
    std::size_t generation_ = 0;
    std::size_t pending_ = 0;
    std::exception_ptr error_;
    bool stop_ = false;
};

}  // namespace dsserve
