// A small HTTP/1.1 client over plain TCP (Boost.Beast), built for the benchmark: many requests in
// flight on one io_context and one thread, each body delivered to the caller as its bytes arrive,
// so that a streamed (SSE) response can be timed chunk by chunk. Transport failures are reported
// through the completion callback and never thrown: one broken connection must not stop a run.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace dsserve::bench {

// "http://host:port[/prefix]" split into parts; the prefix (no trailing slash) is put in front of
// every request path, so a server behind a path-routing proxy works.
struct Url {
    std::string host;
    std::string port;
    std::string prefix;

    // Throws Error for anything but http:// URLs ("https" is not supported: no TLS here).
    static Url parse(std::string_view url);
    static Url from_host_port(std::string_view host, int port);
    std::string str() const;
};

struct HttpRequest {
    std::string method = "POST";  // GET, POST, PUT
    std::string path;             // "/generate"; Url::prefix is added in front
    std::string body;             // sent with Content-Type: application/json when non-empty
    std::vector<std::pair<std::string, std::string>> headers;
};

// Callbacks of one exchange, all called on the io_context's thread. on_status comes once, when
// the response header has arrived; on_data for every piece of body as it is read; on_done exactly
// once at the end, with an empty string after a complete response or a description of what went
// wrong (connect refused, reset, timeout, truncated body).
struct ResponseCallbacks {
    std::function<void(int status, std::string_view reason)> on_status;
    std::function<void(std::string_view data)> on_data;
    std::function<void(const std::string& error)> on_done;
};

class HttpClient {
public:
    // idle_timeout bounds each network operation (connect, write, and the wait for the next piece
    // of body), not the whole exchange: a long generation that keeps streaming never times out,
    // and a server that stops sending fails the exchange ("timed out") instead of holding it.
    HttpClient(boost::asio::io_context& io, Url url,
               std::chrono::seconds idle_timeout = std::chrono::seconds(600));
    ~HttpClient();
    HttpClient(const HttpClient&) = delete;
    HttpClient& operator=(const HttpClient&) = delete;

    // Starts one exchange on its own connection; returns at once.
    void start(HttpRequest request, ResponseCallbacks callbacks);

    const Url& url() const { return url_; }

private:
    struct Resolved;
    boost::asio::io_context& io_;
    Url url_;
    std::chrono::seconds idle_timeout_;
    std::unique_ptr<Resolved> resolved_;
};

struct HttpResponse {
    int status = 0;  // 0 when no response arrived
    std::string body;
    std::string error;  // transport error; empty when a full response arrived
    bool ok() const { return error.empty() && status == 200; }
};

// One blocking exchange on a private io_context (for /get_server_info, /v1/models and the like).
HttpResponse http_fetch(const Url& url, HttpRequest request,
                        std::chrono::seconds timeout = std::chrono::seconds(60));

}  // namespace dsserve::bench
