// Errors: bad input throws dsserve::Error, caught at a boundary (CLI, HTTP route, loader) and
// turned into a message; a broken invariant is DS_ASSERT, which stops the process with file, line
// and the condition, because continuing would corrupt other requests.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace dsserve {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Concatenates anything streamable: str_cat("tensor ", name, " has ", n, " dims").
template <typename... Args>
std::string str_cat(Args&&... args) {
    std::ostringstream out;
    (out << ... << std::forward<Args>(args));
    return out.str();
}

template <typename... Args>
[[noreturn]] void fail(Args&&... args) {
    throw Error(str_cat(std::forward<Args>(args)...));
}

[[noreturn]] void assert_failed(const char* file, int line, const char* condition,
                                const std::string& detail);

}  // namespace dsserve

// Input validation: throws dsserve::Error with the message when the condition is false.
#define DS_CHECK(cond, ...)               \
    do {                                  \
        if (!(cond)) {                    \
            ::dsserve::fail(__VA_ARGS__); \
        }                                 \
    } while (0)

// Internal invariant: aborts with file:line, the condition and the streamed detail.
#define DS_ASSERT(cond, ...)                                                             \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            ::dsserve::assert_failed(__FILE__, __LINE__, #cond,                          \
                                     ::dsserve::str_cat("" __VA_OPT__(, ) __VA_ARGS__)); \
        }                                                                                \
    } while (0)
