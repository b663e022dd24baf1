// Black-box tests of HttpServer over real sockets: the server runs on port 0 in a background
// thread; the client is a plain blocking Asio socket with a poll() timeout on every read, so a
// server bug fails a test instead of hanging it.
#include "adapters/http/server.hpp"

#include <gtest/gtest.h>
#include <poll.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <csignal>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "adapters/http/http_metrics.hpp"
#include "adapters/http/router.hpp"
#include "domain/outcome.hpp"

namespace concertd::http {
namespace {

namespace net = boost::asio;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using boost::system::error_code;
using namespace std::chrono_literals;
using ClientResponse = bhttp::response<bhttp::string_body>;

constexpr auto kClientTimeout = 5s;

// --- the server under test ---------------------------------------------------------------------

Response make_response(unsigned status, std::string body,
                       std::string_view content_type = kJsonContentType) {
    Response response;
    response.status = status;
    response.body = std::move(body);
    response.content_type = content_type;
    return response;
}

Router test_router() {
    Router router;
    router.add(Verb::get, "/hello",
               [](const Request&, const RouteParams&) -> net::awaitable<Response> {
                   co_return make_response(200, R"({"hello":"world"})");
               });
    router.add(Verb::get, "/items/{id}",
               [](const Request&, const RouteParams& params) -> net::awaitable<Response> {
                   co_return make_response(200, std::string(*params.get("id")));
               });
    router.add(Verb::post, "/echo",
               [](const Request& request, const RouteParams&) -> net::awaitable<Response> {
                   Response response = make_response(201, request.body(), "text/plain");
                   response.headers.emplace_back("X-Echo", "yes");
                   co_return response;
               });
    router.add(Verb::get, "/big",  // more than a socket's send buffer takes at once
               [](const Request&, const RouteParams&) -> net::awaitable<Response> {
                   std::string body(1'000'000, 'x');
                   for (std::size_t i = 0; i < body.size(); i += 1000) {
                       body[i] = static_cast<char>('a' + i / 1000 % 26);
                   }
                   co_return make_response(200, std::move(body), "text/plain");
               });
    router.add(Verb::get, "/unavailable",
               [](const Request&, const RouteParams&) -> net::awaitable<Response> {
                   throw domain::DependencyUnavailable("database unreachable");
                   co_return Response{};
               });
    router.add(Verb::get, "/boom",
               [](const Request&, const RouteParams&) -> net::awaitable<Response> {
                   throw std::runtime_error("handler bug");
                   co_return Response{};
               });
    router.add(Verb::get, "/slow",
               [](const Request&, const RouteParams&) -> net::awaitable<Response> {
                   net::steady_timer timer(co_await net::this_coro::executor, 700ms);
                   co_await timer.async_wait(net::use_awaitable);
                   co_return make_response(200, R"({"slow":true})");
               });
    return router;
}

ServerOptions test_options() {
    ServerOptions options;
    options.port = 0;
    options.threads = 2;
    options.header_read_timeout = 1s;
    return options;
}

// Router, metrics and server, with run() on a background thread; stops and joins on
// destruction, failing (not hanging) if run() does not return.
class TestServer {
public:
    explicit TestServer(ServerOptions options = test_options())
        : router_(test_router()),
          metrics_(route_labels(router_)),
          server_(std::move(options), router_, metrics_) {
        server_.listen();
        runner_ = std::thread([this] {
            server_.run();
            ran_.set_value();
        });
    }
    ~TestServer() {
        server_.stop();
        if (!wait_stopped(15s)) {
            ADD_FAILURE() << "run() did not return after stop()";
            std::abort();  // joining would hang the whole test binary
        }
        runner_.join();
    }
    bool wait_stopped(std::chrono::milliseconds timeout) {
        return ran_future_.wait_for(timeout) == std::future_status::ready;
    }

    std::uint16_t port() const { return server_.port(); }
    HttpServer& server() { return server_; }
    HttpMetrics& metrics() { return metrics_; }

private:
    Router router_;
    HttpMetrics metrics_;
    HttpServer server_;
    std::promise<void> ran_;
    std::future<void> ran_future_ = ran_.get_future();
    std::thread runner_;
};

// --- a blocking client -------------------------------------------------------------------------

// A SyncReadStream over a blocking socket that gives up after a timeout instead of blocking.
struct TimedSocket {
    tcp::socket& socket;
    std::chrono::milliseconds timeout;

    template <class MutableBuffers>
    std::size_t read_some(const MutableBuffers& buffers, error_code& ec) {
        pollfd descriptor{socket.native_handle(), POLLIN, 0};
        if (::poll(&descriptor, 1, static_cast<int>(timeout.count())) == 0) {
            ec = net::error::timed_out;
            return 0;
        }
        return socket.read_some(buffers, ec);
    }
    template <class MutableBuffers>
    std::size_t read_some(const MutableBuffers& buffers) {
        error_code ec;
        const std::size_t n = read_some(buffers, ec);
        if (ec) throw boost::system::system_error(ec);
        return n;
    }
};

class Client {
public:
    explicit Client(std::uint16_t port) : socket_(ioc_) {
        socket_.connect(tcp::endpoint(net::ip::address_v4::loopback(), port));
    }

    void send(std::string_view bytes) { net::write(socket_, net::buffer(bytes)); }

    ClientResponse read_response(bool head_request = false) {
        bhttp::response_parser<bhttp::string_body> parser;
        parser.body_limit(1 << 20);
        parser.skip(head_request);
        TimedSocket stream{socket_, kClientTimeout};
        bhttp::read(stream, buffer_, parser);  // throws on timeout, close or garbage
        return parser.release();
    }

    ClientResponse request(std::string_view bytes, bool head_request = false) {
        send(bytes);
        return read_response(head_request);
    }

    // Reads until the server closes the connection; returns what ended it (eof expected) or
    // timed_out.
    error_code read_until_closed(std::chrono::milliseconds timeout = kClientTimeout) {
        TimedSocket stream{socket_, timeout};
        char scratch[4096];
        for (;;) {
            error_code ec;
            stream.read_some(net::buffer(scratch), ec);
            if (ec) return ec;
        }
    }

    tcp::socket& socket() { return socket_; }

private:
    net::io_context ioc_;
    tcp::socket socket_;
    boost::beast::flat_buffer buffer_;
};

bool closed_by_server(const error_code& ec) {
    return ec == net::error::eof || ec == net::error::connection_reset;
}

std::string get(std::string_view target, std::string_view extra_headers = "") {
    return "GET " + std::string(target) + " HTTP/1.1\r\nHost: test\r\n" +
           std::string(extra_headers) + "\r\n";
}

constexpr std::string_view kJson = "application/json; charset=utf-8";

// --- tests -------------------------------------------------------------------------------------

TEST(HttpServerTest, KeepAliveServesTwoRequestsOnOneConnection) {
    TestServer server;
    ASSERT_NE(server.port(), 0);
    Client client(server.port());

    const auto first = client.request(get("/hello"));
    EXPECT_EQ(first.result_int(), 200u);
    EXPECT_EQ(first.body(), R"({"hello":"world"})");
    EXPECT_EQ(first[bhttp::field::content_type], kJson);
    EXPECT_EQ(first[bhttp::field::content_length], "17");
    EXPECT_EQ(first[bhttp::field::server], "concertd");
    EXPECT_FALSE(first[bhttp::field::date].empty());
    EXPECT_TRUE(first.keep_alive());

    const auto second = client.request(get("/items/42?limit=5&x=%2F"));  // query ignored
    EXPECT_EQ(second.result_int(), 200u);
    EXPECT_EQ(second.body(), "42");
    EXPECT_TRUE(second.keep_alive());
}

TEST(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
    TestServer server;
    Client client(server.port());
    client.send(get("/items/1") + get("/items/2") + get("/items/3"));
    EXPECT_EQ(client.read_response().body(), "1");
    EXPECT_EQ(client.read_response().body(), "2");
    EXPECT_EQ(client.read_response().body(), "3");
}

TEST(HttpServerTest, AnAnswerLargerThanTheSendBufferArrivesWholeToASlowReader) {
    TestServer server;
    Client client(server.port());
    client.socket().set_option(net::socket_base::receive_buffer_size(65536));
    client.send(get("/big") + get("/hello"));
    std::this_thread::sleep_for(200ms);  // the server's first write can only be partial
    const auto big = client.read_response();
    ASSERT_EQ(big.body().size(), 1'000'000u);
    for (std::size_t i = 0; i < big.body().size(); i += 1000) {
        ASSERT_EQ(big.body()[i], static_cast<char>('a' + i / 1000 % 26)) << i;
    }
    EXPECT_EQ(client.read_response().body(), R"({"hello":"world"})");
}

TEST(HttpServerTest, PostBodyReachesHandlerAndHeadersComeBack) {
    TestServer server;
    Client client(server.port());
    const auto response = client.request(
        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        "Content-Length: 11\r\n\r\n{\"a\":\"b c\"}");
    EXPECT_EQ(response.result_int(), 201u);
    EXPECT_EQ(response.body(), R"({"a":"b c"})");
    EXPECT_EQ(response[bhttp::field::content_type], "text/plain");
    EXPECT_EQ(response["X-Echo"], "yes");

    // Chunked request bodies are read too.
    const auto chunked = client.request(
        "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
    EXPECT_EQ(chunked.body(), "abcde");
}

TEST(HttpServerTest, ExpectContinueGetsInterimResponse) {
    TestServer server;
    Client client(server.port());
    client.send("POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
    EXPECT_EQ(client.read_response().result_int(), 100u);
    client.send("hi");
    const auto response = client.read_response();
    EXPECT_EQ(response.result_int(), 201u);
    EXPECT_EQ(response.body(), "hi");
}

TEST(HttpServerTest, UnknownRouteIs404Json) {
    TestServer server;
    Client client(server.port());
    const auto response = client.request(get("/nope"));
    EXPECT_EQ(response.result_int(), 404u);
    EXPECT_EQ(response[bhttp::field::content_type], kJson);
    EXPECT_EQ(response.body(), R"({"error":{"code":"NOT_FOUND","message":"no such route"}})");
    EXPECT_TRUE(response.keep_alive());
    EXPECT_EQ(client.request(get("/hello/")).result_int(), 404u);  // trailing slash
    EXPECT_EQ(client.request(get("/hello")).result_int(), 200u);   // still serving
}

TEST(HttpServerTest, WrongMethodIs405WithAllow) {
    TestServer server;
    Client client(server.port());
    const auto response = client.request("DELETE /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    EXPECT_EQ(response.result_int(), 405u);
    EXPECT_EQ(response[bhttp::field::allow], "GET");
    EXPECT_NE(response.body().find(R"("code":"METHOD_NOT_ALLOWED")"), std::string::npos);

    // HEAD is not routed, but its answer has no body, so the connection stays in sync.
    const auto head = client.request("HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n", true);
    EXPECT_EQ(head.result_int(), 405u);
    EXPECT_TRUE(head.body().empty());
    EXPECT_EQ(client.request(get("/hello")).result_int(), 200u);
}

TEST(HttpServerTest, BodyOverLimitIs413AndCloses) {
    TestServer server;
    Client client(server.port());
    const std::string body(70 * 1024, 'x');
    const auto response = client.request("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: " +
                                         std::to_string(body.size()) + "\r\n\r\n" + body);
    EXPECT_EQ(response.result_int(), 413u);
    EXPECT_EQ(response[bhttp::field::content_type], kJson);
    EXPECT_NE(response.body().find(R"("code":"PAYLOAD_TOO_LARGE")"), std::string::npos);
    EXPECT_FALSE(response.keep_alive());
    EXPECT_TRUE(closed_by_server(client.read_until_closed()));
}

TEST(HttpServerTest, AnnouncedOversizeBodyIsRefusedBeforeItIsSent) {
    TestServer server;
    Client client(server.port());
    const auto response = client.request(
        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000000\r\n\r\n");
    EXPECT_EQ(response.result_int(), 413u);
    EXPECT_FALSE(response.keep_alive());
}

TEST(HttpServerTest, ChunkedBodyOverLimitIs413) {
    TestServer server;
    Client client(server.port());
    const auto response = client.request(
        "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n20000\r\n");
    EXPECT_EQ(response.result_int(), 413u);
}

TEST(HttpServerTest, HalfSentRequestIsCutByHeaderReadTimeout) {
    TestServer server;  // header_read_timeout = 1 s
    Client client(server.port());
    const auto started = std::chrono::steady_clock::now();
    client.send("GET /hello HTTP/1.1\r\nHost: t\r\n");  // never finished
    const error_code ec = client.read_until_closed();
    const auto elapsed = std::chrono::steady_clock::now() - started;
    EXPECT_TRUE(closed_by_server(ec)) << ec.message();
    EXPECT_GE(elapsed, 900ms);
    EXPECT_LT(elapsed, 4s);
}

TEST(HttpServerTest, IdleKeepAliveConnectionIsClosedAfterIdleTimeout) {
    ServerOptions options = test_options();
    options.idle_timeout = 1s;
    TestServer server(options);
    Client client(server.port());
    EXPECT_EQ(client.request(get("/hello")).result_int(), 200u);
    const auto started = std::chrono::steady_clock::now();
    EXPECT_TRUE(closed_by_server(client.read_until_closed()));
    EXPECT_GE(std::chrono::steady_clock::now() - started, 900ms);
}

TEST(HttpServerTest, DependencyUnavailableIs503WithRetryAfter) {
    TestServer server;
    Client client(server.port());
    const auto response = client.request(get("/unavailable"));
    EXPECT_EQ(response.result_int(), 503u);
    EXPECT_EQ(response[bhttp::field::retry_after], "1");
    EXPECT_NE(response.body().find(R"("code":"DEPENDENCY_UNAVAILABLE")"), std::string::npos);
    EXPECT_TRUE(response.keep_alive());
}

TEST(HttpServerTest, ThrowingHandlerIs500AndServerKeepsServing) {
    TestServer server;
    Client client(server.port());
    for (int i = 0; i < 3; ++i) {
        const auto response = client.request(get("/boom"));
        EXPECT_EQ(response.result_int(), 500u);
        EXPECT_EQ(response.body(), R"({"error":{"code":"INTERNAL","message":"internal error"}})");
    }
    EXPECT_EQ(client.request(get("/hello")).result_int(), 200u);  // same connection
    Client other(server.port());
    EXPECT_EQ(other.request(get("/hello")).result_int(), 200u);  // and new ones
}

TEST(HttpServerTest, ConnectionCloseIsHonoured) {
    TestServer server;
    Client client(server.port());
    const auto response = client.request(get("/hello", "Connection: close\r\n"));
    EXPECT_EQ(response.result_int(), 200u);
    EXPECT_EQ(response[bhttp::field::connection], "close");
    EXPECT_TRUE(closed_by_server(client.read_until_closed()));
}

TEST(HttpServerTest, Http10ClosesUnlessKeepAliveAsked) {
    TestServer server;
    {
        Client client(server.port());
        const auto response = client.request("GET /hello HTTP/1.0\r\n\r\n");
        EXPECT_EQ(response.result_int(), 200u);
        EXPECT_EQ(response.body(), R"({"hello":"world"})");
        EXPECT_TRUE(closed_by_server(client.read_until_closed()));
    }
    {
        Client client(server.port());
        const auto first = client.request("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        EXPECT_EQ(first[bhttp::field::connection], "keep-alive");
        const auto second = client.request("GET /items/9 HTTP/1.0\r\n\r\n");
        EXPECT_EQ(second.body(), "9");
        EXPECT_TRUE(closed_by_server(client.read_until_closed()));
    }
}

TEST(HttpServerTest, MalformedRequestsAre400AndClose) {
    TestServer server;
    struct Case {
        std::string bytes;
        std::string message;
    };
    std::string many_headers = "GET /hello HTTP/1.1\r\nHost: t\r\n";
    for (int i = 0; i < 70; ++i) many_headers += "X-H" + std::to_string(i) + ": v\r\n";
    many_headers += "\r\n";
    const std::vector<Case> cases = {
        {"NOT HTTP AT ALL\r\n\r\n", "malformed HTTP request"},
        {"GET /hello HTTP/1.1\r\nHost t\r\n\r\n", "malformed HTTP request"},
        {"POST /echo HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nab",
         "malformed HTTP request"},
        {"GET /hello HTTP/1.1\r\nX-Big: " + std::string(9000, 'a') + "\r\n\r\n",
         "request header too large"},
        {many_headers, "too many header fields"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.message + ": " + c.bytes.substr(0, 40));
        Client client(server.port());
        const auto response = client.request(c.bytes);
        EXPECT_EQ(response.result_int(), 400u);
        EXPECT_EQ(response.body(), R"({"error":{"code":"VALIDATION_FAILED","message":")" +
                                       c.message + R"("}})");
        EXPECT_FALSE(response.keep_alive());
        EXPECT_TRUE(closed_by_server(client.read_until_closed()));
    }
}

TEST(HttpServerTest, MetricsRecordRoutesAndUnmatched) {
    TestServer server;
    Client client(server.port());
    client.request(get("/items/1"));
    client.request(get("/items/2"));
    client.request(get("/nope"));
    // record() runs just after the write completes: the client can be a little ahead.
    std::string text;
    for (int i = 0; i < 200; ++i) {
        text = server.metrics().render();
        if (text.find(R"(route="unmatched",status="404"} 1)") != std::string::npos &&
            text.find(R"(route="GET /items/{id}",status="200"} 2)") != std::string::npos) {
            break;
        }
        std::this_thread::sleep_for(10ms);
    }
    EXPECT_NE(text.find(R"(concertd_http_requests_total{route="GET /items/{id}",status="200"} 2)"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find(R"(concertd_http_requests_total{route="unmatched",status="404"} 1)"),
              std::string::npos);
    EXPECT_NE(text.find(R"(concertd_http_request_duration_seconds_count{route="GET /items/{id}"} 2)"),
              std::string::npos);
    EXPECT_NE(text.find("concertd_http_connections_open 1\n"), std::string::npos);
}

TEST(HttpServerTest, ConnectionsBeyondLimitAreClosedAtOnce) {
    ServerOptions options = test_options();
    options.max_connections = 1;
    TestServer server(options);
    auto first = std::make_unique<Client>(server.port());
    EXPECT_EQ(first->request(get("/hello")).result_int(), 200u);

    Client refused(server.port());  // the kernel completes the handshake; the server closes it
    EXPECT_TRUE(closed_by_server(refused.read_until_closed()));
    EXPECT_EQ(server.metrics().connections_rejected().load(), 1u);

    first.reset();  // frees the slot once the server sees the close
    bool served = false;
    for (int i = 0; i < 100 && !served; ++i) {
        try {
            Client next(server.port());
            served = next.request(get("/hello")).result_int() == 200;
        } catch (const std::exception&) {
            std::this_thread::sleep_for(20ms);
        }
    }
    EXPECT_TRUE(served);
}

TEST(HttpServerTest, StopFinishesInFlightRequestAndClosesIdleConnections) {
    TestServer server;
    Client idle(server.port());
    EXPECT_EQ(idle.request(get("/hello")).result_int(), 200u);
    Client busy(server.port());
    busy.send(get("/slow"));  // the handler takes 700 ms
    std::this_thread::sleep_for(200ms);

    const auto stop_started = std::chrono::steady_clock::now();
    server.server().stop();
    server.server().stop();  // idempotent
    EXPECT_TRUE(closed_by_server(idle.read_until_closed(2s)));
    EXPECT_LT(std::chrono::steady_clock::now() - stop_started, 400ms);  // before the slow one

    const auto response = busy.read_response();
    EXPECT_EQ(response.result_int(), 200u);
    EXPECT_EQ(response.body(), R"({"slow":true})");
    EXPECT_EQ(response[bhttp::field::connection], "close");
    EXPECT_TRUE(closed_by_server(busy.read_until_closed()));
    EXPECT_TRUE(server.wait_stopped(5s));

    // Nobody listens any more.
    EXPECT_THROW(Client late(server.port()), boost::system::system_error);
}

TEST(HttpServerTest, DrainDeadlineBoundsStop) {
    ServerOptions options = test_options();
    options.drain_timeout = 1s;
    options.header_read_timeout = 30s;
    TestServer server(options);
    Client stuck(server.port());
    stuck.send("GET /hello HTTP/1.1\r\n");  // a request that never completes
    std::this_thread::sleep_for(100ms);
    const auto started = std::chrono::steady_clock::now();
    server.server().stop();
    EXPECT_TRUE(server.wait_stopped(5s));
    const auto elapsed = std::chrono::steady_clock::now() - started;
    EXPECT_GE(elapsed, 900ms);
    EXPECT_LT(elapsed, 3s);
    EXPECT_TRUE(closed_by_server(stuck.read_until_closed(2s)));
}

TEST(HttpServerTest, SigtermStopsTheServer) {
    TestServer server;
    Client client(server.port());
    EXPECT_EQ(client.request(get("/hello")).result_int(), 200u);  // run() is serving
    std::raise(SIGTERM);
    EXPECT_TRUE(server.wait_stopped(5s));
    // run() gave the signals back their default action.
    struct sigaction action {};
    ASSERT_EQ(::sigaction(SIGTERM, nullptr, &action), 0);
    EXPECT_EQ(action.sa_handler, SIG_DFL);
}

TEST(HttpServerTest, StopBeforeRunMakesRunReturn) {
    Router router = test_router();
    HttpMetrics metrics(route_labels(router));
    HttpServer server(test_options(), router, metrics);
    server.stop();
    auto ran = std::async(std::launch::async, [&server] { server.run(); });
    EXPECT_EQ(ran.wait_for(5s), std::future_status::ready);
    EXPECT_EQ(server.executors().size(), 2u);
}

TEST(HttpServerTest, ListenFailsWithOneClearLine) {
    net::io_context ioc;
    tcp::acceptor blocker(ioc, tcp::endpoint(net::ip::address_v4::loopback(), 0));
    Router router = test_router();
    HttpMetrics metrics(route_labels(router));

    ServerOptions busy = test_options();
    busy.port = blocker.local_endpoint().port();
    HttpServer busy_server(busy, router, metrics);
    try {
        busy_server.listen();
        ADD_FAILURE() << "listen on a busy port succeeded";
    } catch (const std::runtime_error& e) {
        const std::string what = e.what();
        EXPECT_EQ(what.rfind("cannot listen on 127.0.0.1:" + std::to_string(busy.port) + ": ", 0),
                  0u)
            << what;
        EXPECT_EQ(what.find('\n'), std::string::npos);
    }

    ServerOptions foreign = test_options();
    foreign.host = "192.0.2.1";  // TEST-NET-1: not an address of this machine
    HttpServer foreign_server(foreign, router, metrics);
    EXPECT_THROW(foreign_server.listen(), std::runtime_error);
}

TEST(ErrorResponseTest, BuildsEscapedSpecErrorBody) {
    const Response plain = error_response(409, "SEAT_UNAVAILABLE", "seat 7 is held");
    EXPECT_EQ(plain.status, 409u);
    EXPECT_EQ(plain.content_type, kJsonContentType);
    EXPECT_EQ(plain.body, R"({"error":{"code":"SEAT_UNAVAILABLE","message":"seat 7 is held"}})");

    const Response escaped =
        error_response(400, "VALIDATION_FAILED", "bad \"name\"\\ \n\t\x01 caf\xC3\xA9");
    EXPECT_EQ(escaped.body, R"({"error":{"code":"VALIDATION_FAILED","message":"bad \"name\"\\ )"
                            R"(\n\t\u0001 caf)" "\xC3\xA9" R"("}})");

    // Invalid UTF-8 from client input becomes U+FFFD, so the document stays valid JSON.
    const Response repaired = error_response(400, "INVALID_JSON", "x\xFFy\xC3");
    EXPECT_EQ(repaired.body,
              "{\"error\":{\"code\":\"INVALID_JSON\",\"message\":\"x\xEF\xBF\xBDy\xEF\xBF\xBD\"}}");
}

TEST(HttpServerTest, RejectsNonsensicalOptions) {
    Router router = test_router();
    HttpMetrics metrics(route_labels(router));
    ServerOptions options = test_options();
    options.threads = 0;
    EXPECT_THROW(HttpServer(options, router, metrics), std::invalid_argument);
    HttpMetrics wrong_metrics({"GET /only"});
    EXPECT_THROW(HttpServer(test_options(), router, wrong_metrics), std::invalid_argument);
}

}  // namespace
}  // namespace concertd::http
