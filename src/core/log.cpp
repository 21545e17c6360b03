#include "core/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace dsserve::log {
namespace {
std::atomic<Level> g_level{Level::kInfo};
std::mutex g_mutex;
const char* level_name(Level l) {
    switch (l) {
        case Level::kDebug:
            return "DEBUG";
        case Level::kInfo:
            return "INFO";
        case Level::kWarn:
            return "WARN";
        case Level::kError:
            return "ERROR";
    }
    return "?";
}
}  // namespace

void set_level(Level l) {
    g_level.store(l);
}
Level level() {
    return g_level.load(std::memory_order_relaxed);
}

void write(Level l, const std::string& message) {
    auto now = std::chrono::system_clock::now();
    std::time_t t = std::chrono::system_clock::to_time_t(now);
    std::tm tm{};
    localtime_r(&t, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
    std::lock_guard<std::mutex> lock(g_mutex);
    std::fprintf(stderr, "[%s] %s %s\n", stamp, level_name(l), message.c_str());
    std::fflush(stderr);
}

}  // namespace dsserve::log
