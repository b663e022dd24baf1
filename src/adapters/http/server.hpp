// The HTTP/1.1 server: Boost.Beast over Asio C++20 coroutines, one io_context per thread, each
// with its own SO_REUSEPORT acceptor on the same address, so a connection's state never leaves
// the thread that accepted it. One coroutine per connection.
//
// What it guarantees:
// - every answer carries Content-Type, Content-Length, Date and `Server: concertd`; keep-alive
//   follows the request (HTTP/1.1 default on, HTTP/1.0 only on `Connection: keep-alive`);
// - malformed input is a 4xx JSON error (SPEC §3) followed by closing the connection: body over
//   the limit → 413 PAYLOAD_TOO_LARGE (answered from Content-Length before the body is read),
//   header over the limit or too many fields → 400 VALIDATION_FAILED, other bad HTTP → 400;
// - a handler that throws domain::DependencyUnavailable → 503 with `Retry-After: 1`; any other
//   exception → logged, 500 INTERNAL, and the connection keeps serving;
// - a request must arrive whole within header_read_timeout from its first byte, a keep-alive
//   connection may sit idle for idle_timeout, a response must be written within write_timeout;
//   past any of them the connection is closed, so no slow client holds memory or a thread;
// - past max_connections a new connection is accepted and closed at once.
//
// Shutdown (stop): the acceptors close, idle keep-alive connections are closed, requests in
// flight finish and are answered with `Connection: close`; once each thread's gate has no
// connection left (or after drain_timeout), its io_context stops and run() returns.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace concertd::http {

class Router;
class HttpMetrics;

struct ServerOptions {
    std::string host = "127.0.0.1";  // IPv4 or IPv6 literal (brackets allowed) or a host name
    std::uint16_t port = 8080;       // 0: the kernel picks one; see HttpServer::port()
    int threads = 2;                 // I/O threads, one io_context and acceptor each
    std::size_t body_limit_bytes = 64 * 1024;
    std::size_t header_limit_bytes = 8 * 1024;  // request line and all header fields
    std::size_t header_count_max = 64;
    std::chrono::seconds header_read_timeout{10};  // first byte to whole request (body included)
    std::chrono::seconds idle_timeout{60};         // between keep-alive requests
    std::chrono::seconds write_timeout{10};        // one whole response
    std::size_t max_connections = 20000;           // across all threads
    std::chrono::seconds drain_timeout{10};        // stop(): longest wait for in-flight requests
};

class HttpServer {
public:
    // `router` and `metrics` must outlive the server; metrics must have been built with
    // route_labels(router). Throws std::invalid_argument on nonsensical options.
    HttpServer(ServerOptions options, const Router& router, HttpMetrics& metrics);
    ~HttpServer();
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    // Binds and listens on every thread's acceptor. Throws std::runtime_error with a one-line
    // message ("cannot listen on 127.0.0.1:8080: Address already in use") on failure. Note that
    // SO_REUSEPORT lets another process of the same user that also sets it share the port.
    void listen();

    // The bound port (useful with port 0); 0 before listen().
    std::uint16_t port() const;

    // Serves until stop() (or SIGINT/SIGTERM) and the drain are done; calls listen() first if it
    // has not been called. Runs io_context 0 on the calling thread and one new thread for each
    // other. Call once.
    void run();

    // Thread-safe and idempotent, also before run() (which then drains and returns at once).
    // Does not wait: run() returns when the drain is done.
    void stop();

    // The io_contexts' executors, one per I/O thread, for work that should share them.
    std::vector<boost::asio::any_io_executor> executors();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace concertd::http
