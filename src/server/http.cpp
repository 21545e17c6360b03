#include "server/http.h"

#include <sys/socket.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <deque>
#include <optional>

#include "core/error.h"
#include "core/log.h"

namespace dsserve::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

const char* status_text(int status) {
    switch (status) {
        case 200:
            return "OK";
        case 204:
            return "No Content";
        case 400:
            return "Bad Request";
        case 401:
            return "Unauthorized";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 413:
            return "Payload Too Large";
        case 415:
            return "Unsupported Media Type";
        case 500:
            return "Internal Server Error";
        case 503:
            return "Service Unavailable";
        default:
            return "Unknown";
    }
}

PeerState probe_peer(int fd) {
    char byte = 0;
    for (;;) {
        const ssize_t n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n > 0) {
            return PeerState::kData;
        }
        if (n == 0) {
            return PeerState::kClosed;
        }
        if (errno == EINTR) {
            continue;
        }
        return errno == EAGAIN || errno == EWOULDBLOCK ? PeerState::kIdle : PeerState::kClosed;
    }
}

namespace {

std::atomic<std::size_t> g_open{0};

class Session : public std::enable_shared_from_this<Session> {
public:
    Session(tcp::socket socket, const Handler& handler, std::size_t max_body)
        : socket_(std::move(socket)),
          strand_(asio::make_strand(socket_.get_executor())),
          handler_(handler),
          max_body_(max_body) {
        ++g_open;
    }
    ~Session() { --g_open; }

    void start() {
        asio::dispatch(strand_, [self = shared_from_this()] { self->read_request(); });
    }

    // Responder operations, always run on the strand.
    void do_send(std::uint64_t request_id, int status, std::string content_type, std::string body,
                 std::vector<std::pair<std::string, std::string>> headers) {
        if (request_id != current_ || responded_) {
            return;
        }
        responded_ = true;
        std::string head = status_line(status);
        head += "Content-Type: " + content_type + "\r\n";
        head += "Content-Length: " + std::to_string(body.size()) + "\r\n";
        for (const auto& [k, v] : headers) {
            head += k + ": " + v + "\r\n";
        }
        head += common_headers();
        head += "\r\n";
        enqueue(std::move(head) + body);
        finish_response();
    }
    void do_start_stream(std::uint64_t request_id, int status, std::string content_type) {
        if (request_id != current_ || responded_) {
            log::debug("http ", this, " stale start_stream ", request_id, " current ", current_);
            return;
        }
        responded_ = true;
        streaming_ = true;
        std::string head = status_line(status);
        head += "Content-Type: " + content_type + "\r\nCache-Control: no-cache\r\n";
        head += "Transfer-Encoding: chunked\r\n" + common_headers() + "\r\n";
        enqueue(std::move(head));
    }
    void do_write(std::uint64_t request_id, std::string chunk) {
        if (request_id != current_ || !streaming_ || chunk.empty()) {
            return;
        }
        char size[32];
        std::snprintf(size, sizeof(size), "%zx\r\n", chunk.size());
        enqueue(size + chunk + "\r\n");
    }
    void do_end_stream(std::uint64_t request_id) {
        if (request_id != current_ || !streaming_) {
            return;
        }
        streaming_ = false;
        enqueue("0\r\n\r\n");
        finish_response();
    }

    asio::strand<asio::any_io_executor>& strand() { return strand_; }
    bool closed() const { return closed_; }
    void add_disconnect_callback(std::uint64_t request_id, std::function<void()> cb) {
        if (request_id != current_) {
            return;
        }
        if (closed_) {
            cb();
            return;
        }
        disconnect_callbacks_.push_back(std::move(cb));
    }

private:
    static std::string status_line(int status) {
        return "HTTP/1.1 " + std::to_string(status) + " " + status_text(status) + "\r\n";
    }
    std::string common_headers() const {
        std::string h = "Access-Control-Allow-Origin: *\r\n";
        h += keep_alive_ ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
        return h;
    }

    void read_request() {
        parser_.emplace();
        parser_->body_limit(max_body_);
        parser_->header_limit(64 * 1024);
        bhttp::async_read(socket_, buffer_, *parser_,
                          asio::bind_executor(strand_, [self = shared_from_this()](
                                                           beast::error_code ec, std::size_t) {
                              self->on_read(ec);
                          }));
    }

    void on_read(beast::error_code ec) {
        if (ec == bhttp::error::body_limit) {
            keep_alive_ = false;
            current_ = ++next_id_;
            responded_ = false;
            do_send(
                current_, 413, "application/json",
                R"({"object": "error", "message": "Request body too large.", "type": "BadRequestError", "param": null, "code": 413})",
                {});
            return;
        }
        if (ec) {
            if (ec != bhttp::error::end_of_stream && ec != asio::error::eof &&
                ec != asio::error::connection_reset && ec != asio::error::operation_aborted) {
                if (ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category()) {
                    keep_alive_ = false;
                    current_ = ++next_id_;
                    responded_ = false;
                    do_send(
                        current_, 400, "application/json",
                        R"({"object": "error", "message": "Malformed HTTP request.", "type": "BadRequestError", "param": null, "code": 400})",
                        {});
                    return;
                }
            }
            close();
            return;
        }
        auto msg = parser_->release();
        HttpRequest req;
        req.method = std::string(msg.method_string());
        req.target = std::string(msg.target());
        auto q = req.target.find('?');
        req.path = req.target.substr(0, q);
        for (const auto& field : msg) {
            std::string name(field.name_string());
            for (auto& c : name) {
                c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            }
            req.headers[name] = std::string(field.value());
        }
        req.body = std::move(msg.body());
        keep_alive_ = msg.keep_alive();
        current_ = ++next_id_;
        log::debug("http ", this, " request ", current_, " ", req.method, " ", req.target);
        responded_ = false;
        // Watch the socket while the response is being produced: a read that ends means the
        // client went away (pipelined requests are not supported; their bytes end the watch).
        watch();
        try {
            handler_(std::move(req), make_responder());
        } catch (const std::exception& e) {
            do_send(
                current_, 500, "application/json",
                std::string(
                    R"({"object": "error", "message": "Internal server error", "type": "InternalServerError", "param": null, "code": 500})"),
                {});
            log::error("handler failed: ", e.what());
        }
    }

    std::shared_ptr<Responder> make_responder();

    void watch() {
        watching_ = true;
        socket_.async_wait(tcp::socket::wait_read,
                           asio::bind_executor(strand_, [self = shared_from_this(),
                                                         id = current_](beast::error_code ec) {
                               if (id != self->current_) {
                                   return;  // a watch of an earlier request on this connection
                               }
                               self->watching_ = false;
                               if (ec || !self->responding()) {
                                   return;
                               }
                               // Readable while we respond: EOF (client gone) or a pipelined byte.
                               // Not socket_.receive: in Asio's default blocking mode it waits
                               // for a byte, so a spurious readiness held this strand, and every
                               // output posted to it, until the client gave up.
                               switch (probe_peer(self->socket_.native_handle())) {
                                   case PeerState::kIdle:
                                       self->watch();
                                       break;
                                   case PeerState::kClosed:
                                       self->close();
                                       break;
                                   case PeerState::kData:
                                       break;  // a pipelined request: the next read takes it
                               }
                           }));
    }
    bool responding() const { return !responded_ || streaming_ || writing_; }

    void enqueue(std::string data) {
        if (closed_) {
            return;
        }
        queue_.push_back(std::move(data));
        if (!writing_) {
            write_next();
        }
    }
    void write_next() {
        writing_ = true;
        asio::async_write(socket_, asio::buffer(queue_.front()),
                          asio::bind_executor(strand_, [self = shared_from_this()](
                                                           beast::error_code ec, std::size_t) {
                              self->queue_.pop_front();
                              if (ec) {
                                  self->close();
                                  return;
                              }
                              if (!self->queue_.empty()) {
                                  self->write_next();
                              } else {
                                  self->writing_ = false;
                                  if (self->response_done_) {
                                      self->after_response();
                                  }
                              }
                          }));
    }
    void finish_response() {
        response_done_ = true;
        if (!writing_) {
            after_response();
        }
    }
    void after_response() {
        log::debug("http ", this, " response done ", current_);
        response_done_ = false;
        disconnect_callbacks_.clear();
        if (!keep_alive_) {
            beast::error_code ec;
            socket_.shutdown(tcp::socket::shutdown_send, ec);
            close();
            return;
        }
        if (watching_) {
            beast::error_code ec;
            socket_.cancel(ec);  // stop the watch; the next read takes over
        }
        read_request();
    }
    void close() {
        if (closed_) {
            return;
        }
        log::debug("http ", this, " close during request ", current_, " responded ", responded_,
                   " streaming ", streaming_);
        closed_ = true;
        beast::error_code ec;
        socket_.close(ec);
        auto callbacks = std::move(disconnect_callbacks_);
        for (auto& cb : callbacks) {
            cb();
        }
    }

    tcp::socket socket_;
    asio::strand<asio::any_io_executor> strand_;
    const Handler& handler_;
    std::size_t max_body_;
    beast::flat_buffer buffer_;
    std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
    std::deque<std::string> queue_;
    std::vector<std::function<void()>> disconnect_callbacks_;
    std::uint64_t current_ = 0, next_id_ = 0;
    bool keep_alive_ = true, responded_ = false, streaming_ = false, writing_ = false;
    bool response_done_ = false, closed_ = false, watching_ = false;
};

class SessionResponder final : public Responder {
public:
    SessionResponder(std::shared_ptr<Session> s, std::uint64_t id)
        : session_(std::move(s)), id_(id) {}
    void send(int status, std::string content_type, std::string body,
              std::vector<std::pair<std::string, std::string>> headers) override {
        asio::dispatch(session_->strand(),
                       [s = session_, id = id_, status, ct = std::move(content_type),
                        b = std::move(body), h = std::move(headers)]() mutable {
                           s->do_send(id, status, std::move(ct), std::move(b), std::move(h));
                       });
    }
    void start_stream(int status, std::string content_type) override {
        asio::dispatch(session_->strand(),
                       [s = session_, id = id_, status, ct = std::move(content_type)]() mutable {
                           s->do_start_stream(id, status, std::move(ct));
                       });
    }
    void write(std::string chunk) override {
        asio::dispatch(session_->strand(),
                       [s = session_, id = id_, c = std::move(chunk)]() mutable {
                           s->do_write(id, std::move(c));
                       });
    }
    void end_stream() override {
        asio::dispatch(session_->strand(), [s = session_, id = id_] { s->do_end_stream(id); });
    }
    void on_disconnect(std::function<void()> callback) override {
        asio::dispatch(session_->strand(),
                       [s = session_, id = id_, cb = std::move(callback)]() mutable {
                           s->add_disconnect_callback(id, std::move(cb));
                       });
    }
    bool disconnected() const override { return session_->closed(); }
    void post(std::function<void()> fn) override { asio::post(session_->strand(), std::move(fn)); }

private:
    std::shared_ptr<Session> session_;
    std::uint64_t id_;
};

std::shared_ptr<Responder> Session::make_responder() {
    return std::make_shared<SessionResponder>(shared_from_this(), current_);
}

}  // namespace

struct HttpServer::Impl {
    HttpServerOptions options;
    Handler handler;
    asio::io_context io;
    tcp::acceptor acceptor{io};
    std::vector<std::thread> threads;

    void accept() {
        acceptor.async_accept(
            asio::make_strand(io), [this](beast::error_code ec, tcp::socket socket) {
                if (ec) {
                    if (ec == asio::error::operation_aborted) {
                        return;
                    }
                    log::warn("accept failed: ", ec.message());
                } else {
                    beast::error_code ignore;
                    socket.set_option(tcp::no_delay(true), ignore);
                    std::make_shared<Session>(std::move(socket), handler, options.max_body_bytes)
                        ->start();
                }
                accept();
            });
    }
};

HttpServer::HttpServer(HttpServerOptions options, Handler handler)
    : impl_(std::make_unique<Impl>()) {
    impl_->options = std::move(options);
    impl_->handler = std::move(handler);
}

HttpServer::~HttpServer() {
    stop();
}

std::uint16_t HttpServer::listen() {
    beast::error_code ec;
    auto address = asio::ip::make_address(impl_->options.host, ec);
    DS_CHECK(!ec, "--host '", impl_->options.host, "' is not an IP address");
    tcp::endpoint endpoint(address, impl_->options.port);
    impl_->acceptor.open(endpoint.protocol(), ec);
    DS_CHECK(!ec, "cannot open socket: ", ec.message());
    impl_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    impl_->acceptor.bind(endpoint, ec);
    DS_CHECK(!ec, "cannot listen on ", impl_->options.host, ":", impl_->options.port, ": ",
             ec.message());
    impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
    DS_CHECK(!ec, "cannot listen: ", ec.message());
    impl_->accept();
    return impl_->acceptor.local_endpoint().port();
}

void HttpServer::run() {
    auto work = asio::make_work_guard(impl_->io);
    for (int i = 1; i < impl_->options.threads; ++i) {
        impl_->threads.emplace_back([this] { impl_->io.run(); });
    }
    impl_->io.run();
    for (auto& t : impl_->threads) {
        t.join();
    }
    impl_->threads.clear();
}

void HttpServer::stop() {
    asio::post(impl_->io, [this] {
        beast::error_code ec;
        impl_->acceptor.close(ec);
    });
    impl_->io.stop();
}

std::size_t HttpServer::open_connections() const {
    return g_open.load();
}

}  // namespace dsserve::server
