// Splits a streamed response body into lines the way SGLang's bench_serving reads them (aiohttp
// line iteration, then bytes.strip()): a line ends at '\n'; surrounding ASCII whitespace is
// dropped; empty lines (the blank line after each SSE event) are skipped. sse_payload() then
// removes the literal "data: " prefix, with its space, as bench_serving does.
#pragma once

#include <string>
#include <string_view>

namespace dsserve::bench {

class LineSplitter {
public:
    // Calls on_line(std::string_view) for every complete non-empty line in data; keeps the
    // unfinished tail for the next call. A line split across any number of calls is whole.
    template <typename OnLine>
    void feed(std::string_view data, OnLine&& on_line) {
        std::size_t begin = 0;
        for (std::size_t nl = data.find('\n'); nl != std::string_view::npos;
             nl = data.find('\n', begin)) {
            if (pending_.empty()) {
                emit(data.substr(begin, nl - begin), on_line);
            } else {
                pending_.append(data.substr(begin, nl - begin));
                std::string line = std::move(pending_);
                pending_.clear();
                emit(line, on_line);
            }
            begin = nl + 1;
        }
        pending_.append(data.substr(begin));
    }

    // The last line when the body did not end with '\n'.
    template <typename OnLine>
    void finish(OnLine&& on_line) {
        std::string line = std::move(pending_);
        pending_.clear();
        emit(line, on_line);
    }

private:
    template <typename OnLine>
    static void emit(std::string_view line, OnLine& on_line) {
        line = strip(line);
        if (!line.empty()) {
            on_line(line);
        }
    }
    static std::string_view strip(std::string_view s);

    std::string pending_;
};

// "data: {...}" -> "{...}"; a line without the prefix is returned unchanged.
std::string_view sse_payload(std::string_view line);

}  // namespace dsserve::bench
