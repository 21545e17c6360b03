#include "bench/http_client.h"

#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <limits>

#include "core/error.h"

namespace dsserve::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

Url Url::parse(std::string_view url) {
    constexpr std::string_view kScheme = "http://";
    DS_CHECK(url.substr(0, kScheme.size()) == kScheme, "only http:// URLs are supported, got '",
             url, "'");
    std::string_view rest = url.substr(kScheme.size());
    const std::size_t slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash);
    while (!path.empty() && path.back() == '/') {
        path.remove_suffix(1);
    }
    DS_CHECK(!authority.empty(), "URL '", url, "' has no host");
    Url out;
    const std::size_t colon = authority.rfind(':');
    if (colon != std::string_view::npos && authority.find(']', colon) == std::string_view::npos) {
        out.host = std::string(authority.substr(0, colon));
        out.port = std::string(authority.substr(colon + 1));
        int port = 0;
        auto [end, ec] = std::from_chars(out.port.data(), out.port.data() + out.port.size(), port);
        DS_CHECK(ec == std::errc() && end == out.port.data() + out.port.size() && port > 0 &&
                     port < 65536,
                 "URL '", url, "' has a bad port");
    } else {
        out.host = std::string(authority);
        out.port = "80";
    }
    if (out.host.size() >= 2 && out.host.front() == '[' && out.host.back() == ']') {
        out.host = out.host.substr(1, out.host.size() - 2);
    }
    DS_CHECK(!out.host.empty(), "URL '", url, "' has no host");
    out.prefix = std::string(path);
    return out;
}

Url Url::from_host_port(std::string_view host, int port) {
    std::string_view h = host;
    // SGLang's tools take "--host http://127.0.0.1"; accept the scheme and drop it.
    if (h.substr(0, 7) == "http://") {
        h.remove_prefix(7);
    }
    while (!h.empty() && h.back() == '/') {
        h.remove_suffix(1);
    }
    DS_CHECK(port > 0 && port < 65536, "port must be in 1..65535, got ", port);
    return parse(str_cat("http://", h, ":", port));
}

std::string Url::str() const {
    const bool v6 = host.find(':') != std::string::npos;
    return str_cat("http://", v6 ? "[" : "", host, v6 ? "]" : "", ":", port, prefix);
}

struct HttpClient::Resolved {
    tcp::resolver::results_type endpoints;
    std::string error;
    bool done = false;
};

namespace {

// One request/response on its own connection. Owned by the shared_ptrs its pending handlers
// hold, so it lives exactly until the last callback has run.
class Exchange : public std::enable_shared_from_this<Exchange> {
public:
    Exchange(asio::io_context& io, std::chrono::seconds idle_timeout, ResponseCallbacks callbacks)
        : stream_(io), idle_timeout_(idle_timeout), callbacks_(std::move(callbacks)) {}

    void run(const tcp::resolver::results_type& endpoints, http::request<http::string_body> req) {
        req_ = std::move(req);
        stream_.expires_after(idle_timeout_);
        stream_.async_connect(
            endpoints, [self = shared_from_this()](beast::error_code ec, const tcp::endpoint&) {
                self->on_connect(ec);
            });
    }

private:
    void on_connect(beast::error_code ec) {
        if (ec) {
            return finish(describe("connect", ec));
        }
        stream_.socket().set_option(tcp::no_delay(true), ec);
        stream_.expires_after(idle_timeout_);
        http::async_write(stream_, req_,
                          [self = shared_from_this()](beast::error_code wec, std::size_t) {
                              self->on_write(wec);
                          });
    }

    void on_write(beast::error_code ec) {
        if (ec) {
            return finish(describe("write", ec));
        }
        // No limit. Not boost::none: Boost 1.74 compares a Content-Length against an empty
        // optional as "greater" and rejects every sized body.
        parser_.body_limit(std::numeric_limits<std::uint64_t>::max());
        parser_.header_limit(64 * 1024);
        stream_.expires_after(idle_timeout_);
        http::async_read_header(stream_, buffer_, parser_,
                                [self = shared_from_this()](beast::error_code rec, std::size_t) {
                                    self->on_header(rec);
                                });
    }

    void on_header(beast::error_code ec) {
        if (ec) {
            return finish(describe("read header", ec));
        }
        const auto& head = parser_.get();
        if (callbacks_.on_status) {
            callbacks_.on_status(static_cast<int>(head.result_int()),
                                 std::string_view(head.reason().data(), head.reason().size()));
        }
        read_body();
    }

    void read_body() {
        if (parser_.is_done()) {
            return finish("");
        }
        parser_.get().body().data = body_buf_.data();
        parser_.get().body().size = body_buf_.size();
        stream_.expires_after(idle_timeout_);
        http::async_read_some(
            stream_, buffer_, parser_,
            [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_body(ec); });
    }

    void on_body(beast::error_code ec) {
        // need_buffer only says the body buffer is full: deliver it and read on.
        if (ec == http::error::need_buffer) {
            ec = {};
        }
        const std::size_t filled = body_buf_.size() - parser_.get().body().size;
        if (filled > 0 && callbacks_.on_data) {
            callbacks_.on_data(std::string_view(body_buf_.data(), filled));
        }
        if (ec) {
            return finish(describe("read body", ec));
        }
        read_body();
    }

    std::string describe(std::string_view step, beast::error_code ec) const {
        if (ec == beast::error::timeout) {
            return str_cat(step, ": timed out, nothing from the server for ", idle_timeout_.count(),
                           " s");
        }
        return str_cat(step, ": ", ec.message());
    }

    void finish(const std::string& error) {
        beast::error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream_.close();
        if (callbacks_.on_done) {
            auto done = std::move(callbacks_.on_done);
            callbacks_ = {};
            done(error);
        }
    }

    beast::tcp_stream stream_;
    std::chrono::seconds idle_timeout_;
    ResponseCallbacks callbacks_;
    http::request<http::string_body> req_;
    beast::flat_buffer buffer_;
    http::response_parser<http::buffer_body> parser_;
    std::array<char, 16384> body_buf_{};
};

http::verb parse_method(const std::string& method) {
    const http::verb verb = http::string_to_verb(method);
    DS_CHECK(verb == http::verb::get || verb == http::verb::post || verb == http::verb::put,
             "unsupported HTTP method '", method, "'");
    return verb;
}

}  // namespace

HttpClient::HttpClient(asio::io_context& io, Url url, std::chrono::seconds idle_timeout)
    : io_(io),
      url_(std::move(url)),
      idle_timeout_(idle_timeout),
      resolved_(std::make_unique<Resolved>()) {}

HttpClient::~HttpClient() = default;

void HttpClient::start(HttpRequest request, ResponseCallbacks callbacks) {
    if (!resolved_->done) {
        // Resolved once, on first use: a benchmark resolves its server's name a single time.
        tcp::resolver resolver(io_);
        beast::error_code ec;
        resolved_->endpoints = resolver.resolve(url_.host, url_.port, ec);
        if (ec) {
            resolved_->error = str_cat("resolve ", url_.host, ": ", ec.message());
        }
        resolved_->done = true;
    }
    if (!resolved_->error.empty()) {
        // Reported asynchronously like every other failure, never from inside start().
        asio::post(io_, [cb = std::move(callbacks.on_done), error = resolved_->error] {
            if (cb) {
                cb(error);
            }
        });
        return;
    }
    http::request<http::string_body> req{parse_method(request.method), url_.prefix + request.path,
                                         11};
    req.set(http::field::host, url_.host);
    req.set(http::field::user_agent, "dsserve-bench");
    req.set(http::field::accept, "*/*");
    for (const auto& [name, value] : request.headers) {
        req.set(name, value);
    }
    if (!request.body.empty() || req.method() != http::verb::get) {
        req.set(http::field::content_type, "application/json");
        req.body() = std::move(request.body);
        req.prepare_payload();
    }
    std::make_shared<Exchange>(io_, idle_timeout_, std::move(callbacks))
        ->run(resolved_->endpoints, std::move(req));
}

HttpResponse http_fetch(const Url& url, HttpRequest request, std::chrono::seconds timeout) {
    asio::io_context io;
    HttpClient client(io, url, timeout);
    HttpResponse out;
    client.start(std::move(request), {[&](int status, std::string_view) { out.status = status; },
                                      [&](std::string_view data) { out.body.append(data); },
                                      [&](const std::string& error) { out.error = error; }});
    io.run();
    return out;
}

}  // namespace dsserve::bench
