#include "adapters/http/server.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/core/buffer_traits.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <optional>
#include <spdlog/spdlog.h>
#include <stdexcept>
#include <thread>
#include <tuple>

#include "adapters/http/http_metrics.hpp"
#include "adapters/http/router.hpp"
#include "domain/outcome.hpp"

namespace concertd::http {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

// Errors come back as values: a disconnect or timeout is routine, not exceptional.
constexpr auto kNoThrow = net::as_tuple(net::use_awaitable);

constexpr int kThreadsMax = 1024;
constexpr std::size_t kReadSizeMax = 64 * 1024;       // one socket read
constexpr std::size_t kBufferKeepBytes = 16 * 1024;   // larger read buffers are freed when idle
constexpr std::chrono::seconds kLingerTimeout{1};     // draining a client after an error answer
constexpr std::size_t kLingerBytesMax = 256 * 1024;
constexpr std::size_t kLingerChunkBytes = 4 * 1024;
constexpr std::chrono::milliseconds kAcceptRetryDelay{100};  // e.g. after EMFILE
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

using ReusePort = net::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

// A connection, as its worker sees it; lives in the connection coroutine's frame.
struct ConnectionEntry {
    beast::tcp_stream* stream = nullptr;
    bool idle = false;  // waiting for the first byte of a request: safe to close on stop()
    ConnectionEntry* prev = nullptr;
    ConnectionEntry* next = nullptr;
};

// One I/O thread. Everything but `ioc` is touched only from that thread.
struct Worker {
    // Plain state first: destroying `ioc` destroys suspended connection frames, whose guards
    // still touch these, so they must outlive it (members die in reverse order).
    std::size_t index = 0;
    ConnectionEntry* connections = nullptr;  // intrusive list, for stop()
    std::size_t live_connections = 0;        // the gate: accepted and not yet ended
    bool stopping = false;
    bool finished = false;
    Clock::time_point accept_error_logged_at{};

    net::io_context ioc{1};  // one thread runs it
    // I/O objects after `ioc`: they must die before it.
    std::optional<tcp::acceptor> acceptor;
    std::optional<net::signal_set> signals;
    net::steady_timer drain_timer{ioc};
    std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
};

void log_coroutine_failure(std::exception_ptr error, std::string_view what) {
    if (!error) return;  // normal end; never rethrow a null exception_ptr
    try {
        std::rethrow_exception(error);
    } catch (const std::exception& e) {
        spdlog::error("http: {} ended by an exception: {}", what, e.what());
    } catch (...) {
        spdlog::error("http: {} ended by an unknown exception", what);
    }
}

// Handler failures can come at request rate (a database down at 50k req/s): log at most
// kFailureLogsPerSecond lines a second per thread, then how many were left out.
constexpr int kFailureLogsPerSecond = 10;

bool failure_log_allowed() {
    thread_local Clock::time_point window_start{};
    thread_local int used = 0;
    thread_local std::uint64_t suppressed = 0;
    const auto now = Clock::now();
    if (now - window_start >= std::chrono::seconds(1)) {
        if (suppressed > 0) {
            spdlog::warn("http: {} more handler failure(s) not logged in the last second",
                         suppressed);
        }
        window_start = now;
        used = 0;
        suppressed = 0;
    }
    if (used < kFailureLogsPerSecond) {
        ++used;
        return true;
    }
    ++suppressed;
    return false;
}

// "Sun, 06 Nov 1994 08:49:37 GMT", formatted once per second per thread.
std::string_view http_date() {
    thread_local std::time_t cached_second = -1;
    thread_local std::array<char, 32> text{};
    thread_local std::size_t length = 0;
    const std::time_t now = std::time(nullptr);
    if (now != cached_second) {
        static constexpr std::array<const char*, 7> kDays = {"Sun", "Mon", "Tue", "Wed",
                                                             "Thu", "Fri", "Sat"};
        static constexpr std::array<const char*, 12> kMonths = {
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
        std::tm tm{};
        gmtime_r(&now, &tm);
        const int n = std::snprintf(text.data(), text.size(), "%s, %02d %s %04d %02d:%02d:%02d GMT",
                                    kDays[tm.tm_wday], tm.tm_mday, kMonths[tm.tm_mon],
                                    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
        length = n > 0 ? static_cast<std::size_t>(n) : 0;
        cached_second = now;
    }
    return {text.data(), length};
}

// A request target without its query string (the query is the handler's business).
std::string_view path_of(std::string_view target) {
    return target.substr(0, target.find('?'));
}

bool is_token_char(char c) {
    if (c >= 'a' && c <= 'z') return true;
    if (c >= 'A' && c <= 'Z') return true;
    if (c >= '0' && c <= '9') return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// Handler-supplied header fields must not break the framing the server owns.
bool header_allowed(std::string_view name, std::string_view value) {
    if (name.empty()) return false;
    for (const char c : name) {
        if (!is_token_char(c)) return false;
    }
    for (const char c : value) {
        if (c == '\r' || c == '\n' || c == '\0') return false;
    }
    static constexpr std::array<std::string_view, 6> kOwned = {
        "content-length", "transfer-encoding", "connection", "content-type", "server", "date"};
    for (const auto owned : kOwned) {
        if (beast::iequals(name, owned)) return false;
    }
    return true;
}

// Serializes the status line and header of `response` into `head` (reused per connection).
void build_head(std::string& head, const Response& response, bool keep_alive,
                unsigned request_version) {
    head.clear();
    head.append("HTTP/1.1 ");
    char digits[8];
    const auto status_end = std::to_chars(digits, digits + sizeof digits, response.status).ptr;
    head.append(digits, status_end);
    head.push_back(' ');
    const auto status = beast::http::int_to_status(response.status);
    head.append(status == beast::http::status::unknown
                    ? std::string_view("Unknown")
                    : std::string_view(beast::http::obsolete_reason(status)));
    head.append("\r\nServer: concertd\r\nDate: ");
    head.append(http_date());
    // RFC 9110: no Content-Length (and no body) on 1xx, 204 and 304.
    const bool bodyless =
        response.status < 200 || response.status == 204 || response.status == 304;
    if (!bodyless) {
        head.append("\r\nContent-Type: ");
        head.append(response.content_type);
        head.append("\r\nContent-Length: ");
        const auto length_end =
            std::to_chars(digits, digits + sizeof digits, response.body_bytes().size()).ptr;
        head.append(digits, length_end);
    }
    if (!keep_alive) {
        head.append("\r\nConnection: close");
    } else if (request_version < 11) {
        head.append("\r\nConnection: keep-alive");
    }
    for (const auto& [name, value] : response.headers) {
        if (!header_allowed(name, value)) {
            // A bug in a handler, not the client's doing; the name may itself be the problem.
            const bool printable = std::all_of(name.begin(), name.end(), is_token_char);
            spdlog::warn("http: dropped response header '{}' set by a handler",
                         printable ? std::string_view(name) : std::string_view("<invalid name>"));
            continue;
        }
        head.append("\r\n");
        head.append(name);
        head.append(": ");
        head.append(value);
    }
    head.append("\r\n\r\n");
}

// The answer to a request that could not be read, or nullopt when there is nobody to answer
// (client gone, timed out, server stopping).
std::optional<Response> read_error_response(const error_code& ec, std::size_t body_limit_bytes) {
    namespace http_error = beast::http;
    if (ec == http_error::error::body_limit) {
        return error_response(413, "PAYLOAD_TOO_LARGE",
                              "request body exceeds " + std::to_string(body_limit_bytes) + " bytes");
    }
    if (ec == http_error::error::header_limit) {
        return error_response(400, "VALIDATION_FAILED", "request header too large");
    }
    static const auto& kHttpCategory = make_error_code(http_error::error::end_of_stream).category();
    if (ec.category() == kHttpCategory && ec != http_error::error::end_of_stream &&
        ec != http_error::error::partial_message) {
        return error_response(400, "VALIDATION_FAILED", "malformed HTTP request");
    }
    return std::nullopt;
}

}  // namespace

struct HttpServer::Impl {
    Impl(ServerOptions options_in, const Router& router_in, HttpMetrics& metrics_in)
        : options(std::move(options_in)), router(router_in), metrics(metrics_in) {
        workers.reserve(static_cast<std::size_t>(options.threads));
        for (int i = 0; i < options.threads; ++i) {
            auto worker = std::make_unique<Worker>();
            worker->index = static_cast<std::size_t>(i);
            workers.push_back(std::move(worker));
        }
    }

    void listen();
    void run();
    void stop();
    void run_worker(Worker& worker);
    void begin_drain(Worker& worker);
    void maybe_finish(Worker& worker);
    void finish(Worker& worker);
    std::string allowed_methods(std::string_view path) const;

    net::awaitable<void> accept_loop(Worker* worker);
    net::awaitable<void> serve(Worker* worker, tcp::socket socket);

    // Ends a connection's membership in its worker's gate and the global counts.
    struct ConnectionGuard {
        Impl& impl;
        Worker& worker;
        ConnectionEntry& entry;

        ConnectionGuard(Impl& impl_in, Worker& worker_in, ConnectionEntry& entry_in)
            : impl(impl_in), worker(worker_in), entry(entry_in) {
            entry.next = worker.connections;
            if (worker.connections != nullptr) worker.connections->prev = &entry;
            worker.connections = &entry;
        }
        ~ConnectionGuard() {
            if (entry.prev != nullptr) entry.prev->next = entry.next;
            if (entry.next != nullptr) entry.next->prev = entry.prev;
            if (worker.connections == &entry) worker.connections = entry.next;
            impl.release_connection(worker);
        }
        ConnectionGuard(const ConnectionGuard&) = delete;
        ConnectionGuard& operator=(const ConnectionGuard&) = delete;
    };

    void release_connection(Worker& worker) {
        --worker.live_connections;
        open_connections.fetch_sub(1, std::memory_order_relaxed);
        metrics.connections_open().fetch_sub(1, std::memory_order_relaxed);
        maybe_finish(worker);
    }

    const ServerOptions options;
    const Router& router;
    HttpMetrics& metrics;
    std::atomic<std::size_t> open_connections{0};  // across workers, for max_connections
    std::atomic<bool> stop_requested{false};
    std::atomic<std::uint16_t> bound_port{0};
    bool listening = false;
    bool ran = false;
    // Last: workers (and the connection frames their io_contexts own) die before the rest.
    std::vector<std::unique_ptr<Worker>> workers;
};

void HttpServer::Impl::listen() {
    if (listening) return;
    std::string host = options.host;
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);  // "[::1]"
    }
    const std::string where = options.host + ":" + std::to_string(options.port);
    const auto fail = [&](std::string_view reason) {
        for (auto& worker : workers) worker->acceptor.reset();
        throw std::runtime_error("cannot listen on " + where + ": " + std::string(reason));
    };

    error_code ec;
    net::ip::address address = net::ip::make_address(host, ec);
    if (ec) {
        net::io_context resolver_context;
        tcp::resolver resolver(resolver_context);
        const auto results = resolver.resolve(host, "", tcp::resolver::passive, ec);
        if (ec || results.empty()) {
            fail("cannot resolve host (" + (ec ? ec.message() : std::string("no address")) + ")");
        }
        address = results.begin()->endpoint().address();
    }

    tcp::endpoint endpoint(address, options.port);
    for (auto& worker : workers) {
        auto& acceptor = worker->acceptor.emplace(worker->ioc);
        acceptor.open(endpoint.protocol(), ec);
        // Each thread has its own acceptor on the same address; the kernel spreads connections.
        if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
        if (!ec) acceptor.set_option(ReusePort(true), ec);
        if (!ec) acceptor.bind(endpoint, ec);
        if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
        if (ec) fail(ec.message());
        if (endpoint.port() == 0) {
            // Port 0: the first bind picked one; the other acceptors must share it.
            endpoint.port(acceptor.local_endpoint(ec).port());
            if (ec) fail(ec.message());
        }
    }
    bound_port.store(endpoint.port());
    listening = true;
    spdlog::info("http: listening on {}:{} with {} I/O thread(s)", host, endpoint.port(),
                 workers.size());
}

void HttpServer::Impl::run() {
    if (ran) throw std::logic_error("HttpServer::run called twice");
    ran = true;
    listen();

    Worker& first = *workers.front();
    first.signals.emplace(first.ioc, SIGINT, SIGTERM);
    first.signals->async_wait([this](const error_code& ec, int signal_number) {
        if (ec) return;  // cancelled by stop()
        spdlog::info("http: signal {} received, stopping", signal_number);
        stop();
    });
    for (auto& worker : workers) {
        worker->work.emplace(worker->ioc.get_executor());
        net::co_spawn(worker->ioc, accept_loop(worker.get()), [](std::exception_ptr error) {
            log_coroutine_failure(error, "accept loop");
        });
    }

    std::vector<std::thread> threads;
    threads.reserve(workers.size() - 1);
    std::exception_ptr start_failure;
    try {
        for (std::size_t i = 1; i < workers.size(); ++i) {
            threads.emplace_back([this, worker = workers[i].get()] { run_worker(*worker); });
        }
    } catch (...) {
        // Out of threads: drain what did start rather than leave it running unjoined.
        start_failure = std::current_exception();
        stop();
    }
    run_worker(first);
    for (auto& thread : threads) thread.join();
    // Give SIGINT/SIGTERM back their default action: after run() a Ctrl-C must work again.
    first.signals.reset();
    if (start_failure) std::rethrow_exception(start_failure);
    spdlog::info("http: stopped");
}

void HttpServer::Impl::run_worker(Worker& worker) {
    // Asio's advice: an exception out of run() leaves the context usable; keep serving.
    for (;;) {
        try {
            worker.ioc.run();
            return;
        } catch (const std::exception& e) {
            spdlog::error("http: I/O thread {}: unexpected exception: {}", worker.index, e.what());
        } catch (...) {
            spdlog::error("http: I/O thread {}: unexpected exception", worker.index);
        }
    }
}

void HttpServer::Impl::stop() {
    if (stop_requested.exchange(true)) return;
    for (auto& worker : workers) {
        net::post(worker->ioc, [this, worker = worker.get()] { begin_drain(*worker); });
    }
}

void HttpServer::Impl::begin_drain(Worker& worker) {
    if (worker.stopping) return;
    worker.stopping = true;
    error_code ignored;
    if (worker.acceptor) worker.acceptor->close(ignored);
    if (worker.signals) worker.signals->cancel(ignored);
    // Idle keep-alive connections go now; busy ones finish their request and answer with
    // `Connection: close`.
    for (ConnectionEntry* entry = worker.connections; entry != nullptr; entry = entry->next) {
        if (entry->idle) entry->stream->cancel();
    }
    worker.drain_timer.expires_after(options.drain_timeout);
    worker.drain_timer.async_wait([this, &worker](const error_code& ec) {
        if (ec || worker.finished) return;
        spdlog::warn("http: I/O thread {}: drain deadline passed with {} connection(s); closing",
                     worker.index, worker.live_connections);
        for (ConnectionEntry* entry = worker.connections; entry != nullptr; entry = entry->next) {
            entry->stream->close();
        }
        finish(worker);  // frames still suspended are destroyed with the io_context
    });
    maybe_finish(worker);
}

void HttpServer::Impl::maybe_finish(Worker& worker) {
    if (worker.stopping && !worker.finished && worker.live_connections == 0) finish(worker);
}

void HttpServer::Impl::finish(Worker& worker) {
    worker.finished = true;
    worker.drain_timer.cancel();
    worker.work.reset();
    // Explicit stop: work others scheduled on executors() must not keep run() from returning.
    worker.ioc.stop();
}

std::string HttpServer::Impl::allowed_methods(std::string_view path) const {
    std::string allow;
    for (const auto& route : router.routes()) {
        const std::string_view method = beast::http::to_string(route.method);
        if (router.match(route.method, path).kind != Router::MatchKind::kFound) continue;
        // Each method once, even when several patterns match.
        bool listed = false;
        std::string_view rest = allow;
        while (!rest.empty() && !listed) {
            const auto comma = rest.find(", ");
            listed = rest.substr(0, comma) == method;
            rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 2);
        }
        if (listed) continue;
        if (!allow.empty()) allow.append(", ");
        allow.append(method);
    }
    return allow;
}

net::awaitable<void> HttpServer::Impl::accept_loop(Worker* worker) {
    for (;;) {
        auto [ec, socket] = co_await worker->acceptor->async_accept(kNoThrow);
        if (worker->stopping) co_return;  // the socket, if any, closes with it
        if (ec) {
            if (ec == net::error::operation_aborted) co_return;
            // Out of descriptors or memory: pause instead of spinning; log at most once a second.
            const auto now = Clock::now();
            if (now - worker->accept_error_logged_at > std::chrono::seconds(1)) {
                spdlog::warn("http: accept failed on I/O thread {}: {}", worker->index,
                             ec.message());
                worker->accept_error_logged_at = now;
            }
            net::steady_timer pause(worker->ioc, kAcceptRetryDelay);
            co_await pause.async_wait(kNoThrow);
            continue;
        }
        if (open_connections.fetch_add(1, std::memory_order_relaxed) >= options.max_connections) {
            open_connections.fetch_sub(1, std::memory_order_relaxed);
            metrics.connections_rejected().fetch_add(1, std::memory_order_relaxed);
            socket.close(ec);
            continue;
        }
        socket.set_option(tcp::no_delay(true), ec);  // answers are small; do not wait for ACKs
        metrics.connections_open().fetch_add(1, std::memory_order_relaxed);
        ++worker->live_connections;  // released by the connection's guard
        net::co_spawn(worker->ioc, serve(worker, std::move(socket)), [](std::exception_ptr error) {
            log_coroutine_failure(error, "connection");
        });
    }
}

net::awaitable<void> HttpServer::Impl::serve(Worker* worker, tcp::socket socket) {
    namespace http = beast::http;
    beast::tcp_stream stream(std::move(socket));
    // Synchronous writes return would_block instead of waiting (the answer's fast path below).
    error_code blocking_ec;
    stream.socket().non_blocking(true, blocking_ec);
    const bool write_now = !blocking_ec;
    ConnectionEntry entry{&stream};
    ConnectionGuard guard(*this, *worker, entry);
    beast::flat_buffer buffer;  // kept for the connection: pipelined bytes stay in it
    std::optional<http::request_parser<http::string_body>> parser;  // a fresh one per request
    std::string head;  // serialized response header, reused

    for (;;) {
        if (worker->stopping) break;
        if (buffer.size() == 0) {
            // Idle between requests: wait for a first byte under the (long) idle timeout.
            entry.idle = true;
            stream.expires_after(options.idle_timeout);
            auto [ec, n] = co_await stream.async_read_some(
                buffer.prepare(beast::read_size(buffer, kReadSizeMax)), kNoThrow);
            entry.idle = false;
            if (ec) break;  // idle timeout, client gone, or stop()
            buffer.commit(n);
        }
        const auto started = Clock::now();
        // From its first byte, the whole request must arrive within header_read_timeout, so a
        // half-sent one is cut and its memory freed.
        const auto deadline = started + options.header_read_timeout;

        parser.emplace();
        parser->body_limit(options.body_limit_bytes);
        parser->header_limit(static_cast<std::uint32_t>(options.header_limit_bytes));
        stream.expires_at(deadline);
        auto [ec, n] = co_await http::async_read_header(stream, buffer, *parser, kNoThrow);

        std::optional<Response> refusal;
        if (!ec) {
            const Request& header = parser->get();
            const auto field_count =
                static_cast<std::size_t>(std::distance(header.begin(), header.end()));
            if (field_count > options.header_count_max) {
                refusal = error_response(400, "VALIDATION_FAILED", "too many header fields");
            } else if (!parser->is_done()) {
                if (header.version() >= 11 &&
                    beast::iequals(header[http::field::expect], "100-continue")) {
                    stream.expires_after(options.write_timeout);
                    auto [wec, wn] = co_await net::async_write(stream, net::buffer(kContinue),
                                                               kNoThrow);
                    if (wec) break;
                    stream.expires_at(deadline);
                }
                std::tie(ec, n) = co_await http::async_read(stream, buffer, *parser, kNoThrow);
            }
        }
        if (ec) {
            refusal = read_error_response(ec, options.body_limit_bytes);
            if (!refusal) break;  // nobody to answer
        }

        Response response;
        std::size_t route_index = metrics.unmatched_index();
        bool keep_alive = false;
        bool head_request = false;
        unsigned version = 11;
        if (refusal) {
            response = std::move(*refusal);
        } else {
            const Request& request = parser->get();
            version = request.version();
            keep_alive = request.keep_alive();
            head_request = request.method() == http::verb::head;
            const std::string_view path = path_of(request.target());
            Router::Match match = router.match(request.method(), path);
            switch (match.kind) {
                case Router::MatchKind::kNotFound:
                    response = error_response(404, "NOT_FOUND", "no such route");
                    break;
                case Router::MatchKind::kMethodNotAllowed:
                    response = error_response(405, "METHOD_NOT_ALLOWED",
                                              "method not allowed for this route");
                    response.headers.emplace_back("Allow", allowed_methods(path));
                    break;
                case Router::MatchKind::kFound:
                    route_index = match.route_index;
                    try {
                        response = co_await (*match.handler)(request, match.params);
                    } catch (const domain::DependencyUnavailable& e) {
                        if (failure_log_allowed()) {
                            spdlog::warn("http: {} {}: dependency unavailable: {}",
                                         request.method_string(), path, e.what());
                        }
                        response = error_response(503, "DEPENDENCY_UNAVAILABLE",
                                                  "a dependency is unavailable; retry shortly");
                        response.headers.emplace_back("Retry-After", "1");
                    } catch (const std::exception& e) {
                        if (failure_log_allowed()) {
                            spdlog::error("http: {} {}: handler failed: {}",
                                          request.method_string(), path, e.what());
                        }
                        response = error_response(500, "INTERNAL", "internal error");
                    } catch (...) {
                        if (failure_log_allowed()) {
                            spdlog::error("http: {} {}: handler failed with an unknown exception",
                                          request.method_string(), path);
                        }
                        response = error_response(500, "INTERNAL", "internal error");
                    }
                    // A 1xx would leave the client waiting for a final answer.
                    if (response.status < 200 || response.status > 599) {
                        spdlog::error("http: {} {}: handler returned status {}",
                                      request.method_string(), path, response.status);
                        response = error_response(500, "INTERNAL", "internal error");
                    }
                    break;
            }
        }

        if (worker->stopping) keep_alive = false;  // stop() may have come while the handler ran
        build_head(head, response, keep_alive, version);
        const bool send_body = !head_request && response.status >= 200 &&
                               response.status != 204 && response.status != 304;
        const std::array<net::const_buffer, 2> buffers = {
            net::buffer(head),
            send_body ? net::buffer(response.body_bytes()) : net::const_buffer()};
        // Most answers fit in the socket's send buffer: written here, without the asynchronous
        // path's timer armed and cancelled and its completion through the scheduler. Only what
        // did not fit (or an error, reported again by the write) goes the asynchronous way.
        beast::buffers_suffix<std::array<net::const_buffer, 2>> rest(buffers);
        error_code wec;
        if (write_now) rest.consume(stream.socket().write_some(buffers, wec));
        if (beast::buffer_bytes(rest) != 0) {
            stream.expires_after(options.write_timeout);
            std::tie(wec, std::ignore) = co_await net::async_write(stream, rest, kNoThrow);
        }
        metrics.record(route_index, response.status, Clock::now() - started);
        if (wec) break;

        if (refusal) {
            // Lingering close: the client may still be sending the rest of what we refused;
            // closing with unread data would reset the connection and could destroy our
            // answer in flight. Send FIN, then read and discard for a short while.
            error_code ignored;
            stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
            stream.expires_after(kLingerTimeout);
            buffer.consume(buffer.size());
            std::size_t discarded_bytes = 0;
            while (discarded_bytes < kLingerBytesMax) {
                auto [lec, ln] =
                    co_await stream.async_read_some(buffer.prepare(kLingerChunkBytes), kNoThrow);
                if (lec) break;
                discarded_bytes += ln;
            }
            break;
        }
        if (!keep_alive) {
            error_code ignored;
            stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
            break;
        }
        parser.reset();  // frees the request before a possibly long idle wait
        if (buffer.size() == 0 && buffer.capacity() > kBufferKeepBytes) buffer.shrink_to_fit();
    }
    error_code ignored;
    stream.socket().close(ignored);
}

HttpServer::HttpServer(ServerOptions options, const Router& router, HttpMetrics& metrics) {
    const auto require = [](bool ok, const char* what) {
        if (!ok) throw std::invalid_argument(std::string("http server option: ") + what);
    };
    require(options.threads >= 1 && options.threads <= kThreadsMax, "threads must be 1..1024");
    require(options.body_limit_bytes > 0, "body_limit_bytes must be positive");
    require(options.header_limit_bytes > 0 && options.header_limit_bytes <= UINT32_MAX,
            "header_limit_bytes must be positive");
    require(options.header_count_max > 0, "header_count_max must be positive");
    require(options.header_read_timeout.count() > 0, "header_read_timeout must be positive");
    require(options.idle_timeout.count() > 0, "idle_timeout must be positive");
    require(options.write_timeout.count() > 0, "write_timeout must be positive");
    require(options.drain_timeout.count() > 0, "drain_timeout must be positive");
    require(options.max_connections > 0, "max_connections must be positive");
    require(metrics.unmatched_index() == router.routes().size(),
            "metrics must be built with route_labels(router)");
    impl_ = std::make_unique<Impl>(std::move(options), router, metrics);
}

HttpServer::~HttpServer() = default;

void HttpServer::listen() { impl_->listen(); }

std::uint16_t HttpServer::port() const { return impl_->bound_port.load(); }

void HttpServer::run() { impl_->run(); }

void HttpServer::stop() { impl_->stop(); }

std::vector<boost::asio::any_io_executor> HttpServer::executors() {
    std::vector<boost::asio::any_io_executor> result;
    result.reserve(impl_->workers.size());
    for (auto& worker : impl_->workers) result.emplace_back(worker->ioc.get_executor());
    return result;
}

}  // namespace concertd::http
