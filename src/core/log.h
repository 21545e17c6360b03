// Minimal leveled logging to stderr with a timestamp; thread-safe per line.
#pragma once

#include <string>

#include "core/error.h"

namespace dsserve::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

void set_level(Level level);
Level level();
void write(Level level, const std::string& message);

template <typename... Args>
void info(Args&&... args) {
    if (level() <= Level::kInfo) {
        write(Level::kInfo, str_cat(std::forward<Args>(args)...));
    }
}
template <typename... Args>
void warn(Args&&... args) {
    if (level() <= Level::kWarn) {
        write(Level::kWarn, str_cat(std::forward<Args>(args)...));
    }
}
template <typename... Args>
void error(Args&&... args) {
    write(Level::kError, str_cat(std::forward<Args>(args)...));
}
template <typename... Args>
void debug(Args&&... args) {
    if (level() <= Level::kDebug) {
        write(Level::kDebug, str_cat(std::forward<Args>(args)...));
    }
}

}  // namespace dsserve::log
