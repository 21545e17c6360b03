#include "core/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <string>

namespace dsserve::log {
namespace {
Level initial_level() {
    const char* env = std::getenv("DSSERVE_LOG_LEVEL");
    std::string v = env ? env : "";
    return v == "debug"   ? Level::kDebug
           : v == "warn"  ? Level::kWarn
           : v == "error" ? Level::kError
                          : Level::kInfo;
}
std::atomic<Level> g_level{initial_level()};
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
