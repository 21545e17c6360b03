#include "core/thread_pool.h"

#include <algorithm>
#include <cstdlib>

namespace dsserve {

ThreadPool::ThreadPool(std::size_t num_threads) {
    std::size_t extra = num_threads > 1 ? num_threads - 1 : 0;
    ranges_.resize(extra + 1);
    for (std::size_t i = 0; i < extra; ++i) {
        workers_.emplace_back([this, i] { worker_loop(i + 1); });
    }
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) {
        t.join();
    }
}

std::size_t ThreadPool::default_threads() {
    if (const char* env = std::getenv("DSSERVE_NUM_THREADS")) {
        int n = std::atoi(env);
        if (n > 0) {
            return static_cast<std::size_t>(n);
        }
    }
    return std::max<std::size_t>(1, std::thread::hardware_concurrency());
}

void ThreadPool::parallel_for(std::size_t n,
                              const std::function<void(std::size_t, std::size_t)>& fn,
                              std::size_t min_chunk) {
    if (n == 0) {
        return;
    }
    std::size_t parts =
        std::min(size(), std::max<std::size_t>(1, n / std::max<std::size_t>(1, min_chunk)));
    if (parts <= 1 || workers_.empty()) {
        fn(0, n);
        return;
    }
    std::size_t chunk = (n + parts - 1) / parts;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        for (std::size_t i = 0; i < ranges_.size(); ++i) {
            std::size_t b = std::min(n, i * chunk);
            std::size_t e = i < parts ? std::min(n, b + chunk) : b;
            ranges_[i] = {b, e};
        }
        job_ = &fn;
        pending_ = workers_.size();
        ++generation_;
    }
    wake_.notify_all();
    try {
        fn(ranges_[0].first, ranges_[0].second);
    } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) {
            error_ = std::current_exception();
        }
    }
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return pending_ == 0; });
    job_ = nullptr;
    if (error_) {
        std::exception_ptr error = error_;
        error_ = nullptr;
        std::rethrow_exception(error);
    }
}

void ThreadPool::worker_loop(std::size_t index) {
    std::size_t seen = 0;
    for (;;) {
        const std::function<void(std::size_t, std::size_t)>* job;
        std::pair<std::size_t, std::size_t> range;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
            if (stop_) {
                return;
            }
            seen = generation_;
            job = job_;
            range = ranges_[index];
        }
        std::exception_ptr error;
        if (range.first < range.second) {
            try {
                (*job)(range.first, range.second);
            } catch (...) {
                error = std::current_exception();
            }
        }
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (error && !error_) {
                error_ = error;
            }
            if (--pending_ == 0) {
                done_.notify_one();
            }
        }
    }
}

}  // namespace dsserve
