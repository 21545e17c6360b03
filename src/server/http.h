// A small HTTP/1.1 server on Boost.Asio with Beast's request parser: keep-alive, a body size
// limit, complete responses and chunked streams (SSE). Each connection is served on its own
// strand; a handler answers through a Responder, from any thread (calls are posted to the strand).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>  // before Asio in http.cpp: its awaitable.hpp uses std::exchange unincluded
#include <vector>

namespace dsserve::server {

struct HttpRequest {
    std::string method;
    std::string target;                          // path and query as sent
    std::string path;                            // without the query
    std::map<std::string, std::string> headers;  // names lower-cased
    std::string body;

    std::string header(const std::string& name) const {
        auto it = headers.find(name);
        return it == headers.end() ? std::string() : it->second;
    }
};

class Responder {
public:
    virtual ~Responder() = default;
    // A whole response. Safe from any thread; only the first response of a request counts.
    virtual void send(int status, std::string content_type, std::string body,
                      std::vector<std::pair<std::string, std::string>> headers = {}) = 0;
    // A chunked stream: start once, write any number of chunks, end once.
    virtual void start_stream(int status, std::string content_type) = 0;
    virtual void write(std::string chunk) = 0;
    virtual void end_stream() = 0;
    // Called once if the client goes away before the response is complete.
    virtual void on_disconnect(std::function<void()> callback) = 0;
    virtual bool disconnected() const = 0;
    // Runs fn on this connection's strand, in order with the other calls: where a request's
    // output is turned into JSON, off the engine thread.
    virtual void post(std::function<void()> fn) = 0;
};

using Handler = std::function<void(HttpRequest request, std::shared_ptr<Responder> responder)>;

struct HttpServerOptions {
    std::string host = "127.0.0.1";
    std::uint16_t port = 30000;
    int threads = 2;
    std::size_t max_body_bytes = 64u << 20;
};

class HttpServer {
public:
    HttpServer(HttpServerOptions options, Handler handler);
    ~HttpServer();
    // Binds and listens; throws Error when the address is taken. Returns the bound port.
    std::uint16_t listen();
    void run();   // blocks until stop()
    void stop();  // thread-safe
    std::size_t open_connections() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

const char* status_text(int status);

// What a connected socket holds, looked at without consuming anything and without blocking, even
// on a blocking descriptor: the server probes this way when a connection polls readable while a
// response is being produced. kIdle is a readiness that turned out spurious (it happens: an
// epoll event can be harvested just before the request bytes it announced are read).
enum class PeerState { kIdle, kData, kClosed };
PeerState probe_peer(int fd);

}  // namespace dsserve::server
