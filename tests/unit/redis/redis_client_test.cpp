// RedisClient against a throwaway redis-server (scripts/redis-start.sh), started once for this
// binary. Tests that need the server are skipped, with the reason, when it cannot start.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <functional>
#include <future>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "adapters/redis/redis_client.hpp"
#include "domain/outcome.hpp"

namespace concertd::redis {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using domain::DependencyUnavailable;
using Clock = std::chrono::steady_clock;
using Type = RedisReply::Type;

// Runs `command`; returns its exit status and standard output.
std::pair<int, std::string> run_command(const std::string& command) {
    std::string output;
    FILE* pipe = ::popen(command.c_str(), "r");
    if (!pipe) return {-1, ""};
    std::array<char, 256> buffer{};
    while (std::fgets(buffer.data(), buffer.size(), pipe)) output += buffer.data();
    int status = ::pclose(pipe);
    while (!output.empty() && (output.back() == '\n' || output.back() == '\r')) output.pop_back();
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

// A listening socket on 127.0.0.1 with its port; optionally its accept queue filled.
class TestListener {
public:
    TestListener() {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in address = loopback(0);
        socklen_t length = sizeof(address);
        ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address));
        ::listen(fd_, 0);
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
        port_ = ntohs(address.sin_port);
    }
    ~TestListener() {
        for (int fd : fillers_) ::close(fd);
        if (fd_ >= 0) ::close(fd_);
    }
    TestListener(const TestListener&) = delete;
    TestListener& operator=(const TestListener&) = delete;

    std::uint16_t port() const { return port_; }

    // Closes the listening socket: the port then refuses connections.
    void close() {
        ::close(fd_);
        fd_ = -1;
    }

    // Fills the accept queue (never accepted), so that the kernel drops further SYNs and a new
    // connect hangs. False if the queue did not fill.
    bool fill_backlog() {
        for (int i = 0; i < 16; ++i) {
            int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
            sockaddr_in address = loopback(port_);
            ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
            fillers_.push_back(fd);
            // A connect still in progress after a while: the SYN was dropped.
            std::this_thread::sleep_for(50ms);
            int error = 0;
            socklen_t length = sizeof(error);
            ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length);
            sockaddr_in peer{};
            socklen_t peer_length = sizeof(peer);
            if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_length) != 0) {
                return true;
            }
        }
        return false;
    }

private:
    static sockaddr_in loopback(std::uint16_t port) {
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        address.sin_port = htons(port);
        return address;
    }

    int fd_ = -1;
    std::uint16_t port_ = 0;
    std::vector<int> fillers_;
};

// One redis-server for the whole binary, in a temporary directory.
class RedisEnvironment : public ::testing::Environment {
public:
    void SetUp() override {
        std::string pattern = (std::filesystem::temp_directory_path() / "concertd-redis-XXXXXX");
        if (!::mkdtemp(pattern.data())) {
            reason_ = "mkdtemp failed";
            return;
        }
        dir_ = pattern;
        auto [status, output] = run_command(script("redis-start.sh") + " " + dir_);
        if (status != 0 || !output.starts_with("redis://")) {
            reason_ = "scripts/redis-start.sh failed (exit " + std::to_string(status) + ")";
            return;
        }
        url_ = output;
        port_ = std::to_string(parse_redis_url(url_).port);
    }

    void TearDown() override {
        if (dir_.empty()) return;
        run_command(script("redis-stop.sh") + " " + dir_);
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }

    bool stop() { return run_command(script("redis-stop.sh") + " " + dir_).first == 0; }
    // Starts it again on the same port.
    bool start() {
        return run_command(script("redis-start.sh") + " " + dir_ + " " + port_).first == 0;
    }

    const std::string& url() const { return url_; }
    const std::string& reason() const { return reason_; }

private:
    static std::string script(const char* name) {
        return std::string(CONCERTD_SOURCE_DIR) + "/scripts/" + name;
    }

    std::string dir_;
    std::string url_;
    std::string port_;
    std::string reason_;
};

auto* const environment = dynamic_cast<RedisEnvironment*>(
    ::testing::AddGlobalTestEnvironment(new RedisEnvironment));

// Runs the coroutine to completion on `io` and returns (or throws) its result. The io_context
// keeps work (the connection's reader), so run() would not return: run handlers until done.
template <class T>
T run_on(asio::io_context& io, asio::awaitable<T> awaitable) {
    io.restart();
    std::future<T> result = asio::co_spawn(io, std::move(awaitable), asio::use_future);
    while (result.wait_for(0s) != std::future_status::ready) {
        if (io.run_one_for(10s) == 0 && result.wait_for(0s) != std::future_status::ready) {
            ADD_FAILURE() << "io_context ran out of work before the coroutine finished";
            break;
        }
    }
    return result.get();
}

std::vector<std::string> args(std::initializer_list<const char*> list) {
    return {list.begin(), list.end()};
}

// A key unique to this process and test.
std::string test_key(const std::string& name) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    return std::string("concertd:test:") + std::to_string(::getpid()) + ":" + info->name() + ":" +
           name;
}

class RedisTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (environment->url().empty()) {
            GTEST_SKIP() << "redis-server not available: " << environment->reason();
        }
    }

    static RedisOptions options() { return parse_redis_url(environment->url()); }

    RedisReply command(RedisClient& client, std::vector<std::string> argv) {
        return run_on(io_, client.command(std::move(argv)));
    }

    // Seconds the call took to throw DependencyUnavailable; fails the test if it did not.
    double seconds_to_fail(RedisClient& client, std::vector<std::string> argv) {
        const auto start = Clock::now();
        EXPECT_THROW(command(client, std::move(argv)), DependencyUnavailable);
        return std::chrono::duration<double>(Clock::now() - start).count();
    }

    asio::io_context io_;
};

// --- no server needed ---------------------------------------------------------------------

TEST(RedisScriptTest, Sha1MatchesKnownVectors) {
    EXPECT_EQ(RedisScript("").sha1, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    EXPECT_EQ(RedisScript("abc").sha1, "a9993e364706816aba3e25717850c26c9cd0d89d");
    // 56 bytes: the length no longer fits in the first block.
    EXPECT_EQ(RedisScript("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq").sha1,
              "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    EXPECT_EQ(RedisScript(std::string(1000, 'a')).sha1,
              "291e9a6c66994949b57ba5e650361e98fc36b1ba");
}

TEST(RedisUrlTest, ParsesHostPortAndDatabase) {
    struct Case {
        const char* url;
        const char* host;
        int port;
        int database;
    };
    const Case cases[] = {
        {"redis://127.0.0.1:6380/2", "127.0.0.1", 6380, 2},
        {"redis://cache.internal", "cache.internal", 6379, 0},
        {"redis://cache-1:7000", "cache-1", 7000, 0},
        {"redis://localhost/3", "localhost", 6379, 3},
        {"redis://localhost:6379/", "localhost", 6379, 0},
        {"redis://[::1]:6390/1", "::1", 6390, 1},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.url);
        RedisOptions options = parse_redis_url(c.url);
        EXPECT_EQ(options.host, c.host);
        EXPECT_EQ(options.port, c.port);
        EXPECT_EQ(options.database, c.database);
    }
}

TEST(RedisUrlTest, RejectsAnythingElse) {
    for (const char* url :
         {"", "redis://", "http://localhost:6379", "redis://:6379", "redis://host:",
          "redis://host:0", "redis://host:65536", "redis://host:-1", "redis://host:63a", "redis://host/x",
          "redis://host/-1", "redis://host/1/2", "redis://user:pw@host", "redis://host?db=1",
          "redis://[::1", "redis://::1:6379", "rediss://host", "redis://host:6379/99999999999"}) {
        SCOPED_TRACE(url);
        try {
            parse_redis_url(url);
            ADD_FAILURE() << "accepted";
        } catch (const std::invalid_argument& e) {
            EXPECT_STREQ(e.what(), "CONCERTD_REDIS_URL must be redis://host:port/db");
        }
    }
}

TEST(RedisClientOptionsTest, RejectsInvalidOptions) {
    RedisOptions options;
    options.pending_max = 0;
    EXPECT_THROW(RedisClient{options}, std::invalid_argument);
    options = {};
    options.command_timeout = 0ms;
    EXPECT_THROW(RedisClient{options}, std::invalid_argument);
}

// A port where nothing listens: refused at once, well within connect_timeout.
TEST(RedisClientNoServerTest, RefusedPortFailsWithinConnectTimeout) {
    TestListener listener;
    listener.close();
    RedisOptions options;
    options.port = listener.port();
    options.connect_timeout = 500ms;
    options.command_timeout = 5s;
    RedisClient client(options);
    asio::io_context io;
    for (int i = 0; i < 3; ++i) {  // and again: every call retries, none hangs
        const auto start = Clock::now();
        EXPECT_THROW(run_on(io, client.command(args({"PING"}))), DependencyUnavailable);
        EXPECT_LT(Clock::now() - start, options.connect_timeout + 500ms);
    }
    EXPECT_FALSE(run_on(io, client.ping()));
}

// A server whose accept queue is full drops the SYN: only connect_timeout ends the wait.
TEST(RedisClientNoServerTest, UnansweredConnectFailsAfterConnectTimeout) {
    TestListener listener;
    if (!listener.fill_backlog()) GTEST_SKIP() << "the kernel did not drop SYNs";
    RedisOptions options;
    options.port = listener.port();
    options.connect_timeout = 300ms;
    options.command_timeout = 5s;
    RedisClient client(options);
    asio::io_context io;
    const auto start = Clock::now();
    EXPECT_THROW(run_on(io, client.command(args({"PING"}))), DependencyUnavailable);
    const auto took = Clock::now() - start;
    EXPECT_GE(took, options.connect_timeout - 20ms);
    EXPECT_LT(took, options.connect_timeout + 500ms);
}

// Connected but never answered (accept queue, nobody reads): command_timeout ends the wait.
TEST(RedisClientNoServerTest, SilentServerFailsAfterCommandTimeout) {
    TestListener listener;
    RedisOptions options;
    options.port = listener.port();
    options.command_timeout = 200ms;
    RedisClient client(options);
    asio::io_context io;
    const auto start = Clock::now();
    EXPECT_THROW(run_on(io, client.command(args({"PING"}))), DependencyUnavailable);
    const auto took = Clock::now() - start;
    EXPECT_GE(took, 190ms);
    EXPECT_LT(took, 1s);
}

TEST(RedisClientNoServerTest, RejectsAnEmptyCommand) {
    RedisClient client(RedisOptions{});
    asio::io_context io;
    EXPECT_THROW(run_on(io, client.command({})), std::invalid_argument);
    EXPECT_TRUE(run_on(io, client.pipeline({})).empty());
}

// --- against redis-server -------------------------------------------------------------------

TEST_F(RedisTest, SetGetIncrNilAndErrors) {
    RedisClient client(options());
    const std::string key = test_key("k");
    const std::string counter = test_key("n");
    command(client, {"DEL", key, counter});

    RedisReply set = command(client, {"SET", key, std::string("va\0l\r\nue", 8)});
    EXPECT_EQ(set.type, Type::kStatus);
    EXPECT_EQ(set.text, "OK");

    RedisReply get = command(client, {"GET", key});
    EXPECT_EQ(get.type, Type::kString);
    EXPECT_EQ(get.text, std::string("va\0l\r\nue", 8));  // binary-safe both ways

    RedisReply missing = command(client, {"GET", test_key("missing")});
    EXPECT_TRUE(missing.is_nil());

    EXPECT_EQ(command(client, {"INCR", counter}).integer, 1);
    RedisReply incr = command(client, {"INCRBY", counter, "41"});
    EXPECT_EQ(incr.type, Type::kInteger);
    EXPECT_EQ(incr.integer, 42);

    RedisReply wrong_type = command(client, {"INCR", key});  // an error reply, not a throw
    EXPECT_TRUE(wrong_type.is_error());
    EXPECT_TRUE(wrong_type.text.starts_with("ERR")) << wrong_type.text;
    RedisReply unknown = command(client, {"NO_SUCH_COMMAND"});
    EXPECT_TRUE(unknown.is_error());

    EXPECT_TRUE(run_on(io_, client.ping()));  // the connection is still good
}

TEST_F(RedisTest, ArraysNestedArraysAndPipelines) {
    RedisClient client(options());
    const std::string list = test_key("list");
    auto replies = run_on(io_, client.pipeline({{"DEL", list},
                                                {"RPUSH", list, "a", "b", "c"},
                                                {"LRANGE", list, "0", "-1"},
                                                {"LRANGE", test_key("none"), "0", "-1"},
                                                {"GET", list},
                                                {"LLEN", list}}));
    ASSERT_EQ(replies.size(), 6u);
    EXPECT_EQ(replies[1].integer, 3);
    ASSERT_EQ(replies[2].type, Type::kArray);
    ASSERT_EQ(replies[2].elements.size(), 3u);
    EXPECT_EQ(replies[2].elements[0].text, "a");
    EXPECT_EQ(replies[2].elements[2].text, "c");
    EXPECT_EQ(replies[3].type, Type::kArray);
    EXPECT_TRUE(replies[3].elements.empty());
    EXPECT_TRUE(replies[4].is_error());  // WRONGTYPE mid-pipeline; the rest still answered
    EXPECT_EQ(replies[5].integer, 3);

    RedisScript nested("return {1, 'two', {3, 'four'}, redis.status_reply('OK')}");
    RedisReply reply = run_on(io_, client.eval(nested, {}, {}));
    ASSERT_EQ(reply.type, Type::kArray);
    ASSERT_EQ(reply.elements.size(), 4u);
    EXPECT_EQ(reply.elements[0].integer, 1);
    EXPECT_EQ(reply.elements[1].text, "two");
    ASSERT_EQ(reply.elements[2].elements.size(), 2u);
    EXPECT_EQ(reply.elements[2].elements[1].text, "four");
    EXPECT_EQ(reply.elements[3].type, Type::kStatus);
}

TEST_F(RedisTest, SelectsTheDatabaseFromTheUrl) {
    RedisOptions in_db_3 = options();
    in_db_3.database = 3;
    RedisClient db3(in_db_3);
    RedisClient db0(options());
    const std::string key = test_key("k");
    command(db0, {"DEL", key});
    EXPECT_EQ(command(db3, {"SET", key, "three"}).text, "OK");
    EXPECT_TRUE(command(db0, {"GET", key}).is_nil());
    EXPECT_EQ(command(db3, {"GET", key}).text, "three");
    command(db3, {"DEL", key});

    RedisOptions bad = options();
    bad.database = 100'000;  // beyond `databases`: SELECT fails, the call with it
    RedisClient no_such_db(bad);
    EXPECT_THROW(command(no_such_db, {"PING"}), DependencyUnavailable);
}

TEST_F(RedisTest, ResolvesAHostName) {
    RedisOptions by_name = options();
    by_name.host = "localhost";  // may resolve to ::1 first, where nothing listens
    RedisClient client(by_name);
    EXPECT_TRUE(run_on(io_, client.ping()));

    RedisOptions unknown = options();
    unknown.host = "no-such-host.invalid";
    RedisClient nowhere(unknown);
    EXPECT_THROW(command(nowhere, {"PING"}), DependencyUnavailable);
}

// 2 io_contexts on 2 threads, 500 coroutines each, all at once: every INCR counted once and
// every caller gets its own reply (a FIFO mismatch would repeat or lose values).
TEST_F(RedisTest, ConcurrentCallersOnTwoThreadsArePipelinedAndMatched) {
    constexpr int kThreads = 2;
    constexpr int kCallers = 500;
    RedisClient client(options());
    const std::string counter = test_key("counter");
    command(client, {"DEL", counter});

    std::vector<std::vector<std::int64_t>> seen(kThreads);
    std::vector<std::string> errors(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            asio::io_context io;
            int finished = 0;
            for (int i = 0; i < kCallers; ++i) {
                asio::co_spawn(io, client.command({"INCR", counter}),
                               [&](std::exception_ptr error, RedisReply reply) {
                                   if (error) {
                                       try {
                                           std::rethrow_exception(error);
                                       } catch (const std::exception& e) {
                                           errors[t] = e.what();
                                       }
                                   } else {
                                       seen[t].push_back(reply.integer);
                                   }
                                   if (++finished == kCallers) io.stop();
                               });
            }
            io.run();
        });
    }
    for (auto& thread : threads) thread.join();

    std::set<std::int64_t> values;
    for (int t = 0; t < kThreads; ++t) {
        EXPECT_EQ(errors[t], "");
        EXPECT_EQ(seen[t].size(), static_cast<std::size_t>(kCallers));
        values.insert(seen[t].begin(), seen[t].end());
    }
    EXPECT_EQ(values.size(), static_cast<std::size_t>(kThreads * kCallers));
    EXPECT_EQ(*values.begin(), 1);
    EXPECT_EQ(*values.rbegin(), kThreads * kCallers);
    EXPECT_EQ(command(client, {"GET", counter}).text, std::to_string(kThreads * kCallers));
}

TEST_F(RedisTest, EvalFallsBackToEvalOnNoscriptThenUsesEvalsha) {
    RedisClient client(options());
    const std::string key = test_key("k");
    RedisScript script("redis.call('SET', KEYS[1], ARGV[1]) return redis.call('GET', KEYS[1])");
    EXPECT_EQ(command(client, {"SCRIPT", "LOAD", script.source}).text, script.sha1);
    command(client, {"SCRIPT", "FLUSH"});
    command(client, {"CONFIG", "RESETSTAT"});

    auto calls = [&](const char* name) {
        std::string info = command(client, {"INFO", "commandstats"}).text;
        std::string field = std::string("cmdstat_") + name + ":calls=";
        auto at = info.find(field);
        return at == std::string::npos ? 0 : std::stoi(info.substr(at + field.size()));
    };

    RedisReply first = run_on(io_, client.eval(script, {key}, {"one"}));
    EXPECT_EQ(first.text, "one");
    EXPECT_EQ(calls("eval"), 1);  // after EVALSHA's NOSCRIPT

    RedisReply second = run_on(io_, client.eval(script, {key}, {"two"}));
    EXPECT_EQ(second.text, "two");
    EXPECT_EQ(calls("eval"), 1);  // no second EVAL: EVALSHA found it
    EXPECT_EQ(command(client, {"SCRIPT", "EXISTS", script.sha1}).elements.at(0).integer, 1);

    RedisReply failing = run_on(io_, client.eval(RedisScript("return redis.error_reply('no')"),
                                                  {}, {}));
    EXPECT_TRUE(failing.is_error());
    EXPECT_TRUE(failing.text.ends_with("no")) << failing.text;  // Redis 7 adds "ERR "
}

// A call still waiting after command_timeout resets the connection: it and every command
// behind it fail, the next call reconnects.
TEST_F(RedisTest, CommandTimeoutResetsTheConnectionWhichRecovers) {
    RedisOptions short_timeout = options();
    short_timeout.command_timeout = 200ms;
    RedisClient client(short_timeout);
    EXPECT_TRUE(run_on(io_, client.ping()));

    // BLPOP blocks for 2 s; a PING queued behind it on the same connection.
    std::string blpop_error;
    bool blpop_done = false;
    asio::co_spawn(io_, client.command({"BLPOP", test_key("empty"), "2"}),
                   [&](std::exception_ptr error, RedisReply) {
                       blpop_done = true;
                       try {
                           if (error) std::rethrow_exception(error);
                       } catch (const DependencyUnavailable& e) {
                           blpop_error = e.what();
                       }
                   });
    const auto start = Clock::now();
    EXPECT_THROW(command(client, {"PING"}), DependencyUnavailable);
    const auto took = Clock::now() - start;
    EXPECT_GE(took, 190ms);
    EXPECT_LT(took, 1s);
    while (!blpop_done && io_.run_one_for(5s) > 0) {
    }
    EXPECT_TRUE(blpop_done);
    EXPECT_TRUE(blpop_error.starts_with("redis: no reply within 200 ms")) << blpop_error;

    EXPECT_TRUE(run_on(io_, client.ping()));
    const std::string key = test_key("after");
    EXPECT_EQ(command(client, {"SET", key, "1"}).text, "OK");
}

// Each call gets its full command_timeout, counted from when it was sent, however many calls
// answered before it (one timer per connection watches them all).
TEST_F(RedisTest, EachCallGetsItsOwnCommandTimeout) {
    RedisOptions short_timeout = options();
    short_timeout.command_timeout = 300ms;
    RedisClient client(short_timeout);
    for (int i = 0; i < 6; ++i) {  // answered calls over 250 ms: none may time out
        EXPECT_TRUE(run_on(io_, client.ping()));
        std::this_thread::sleep_for(50ms);
    }
    const auto start = Clock::now();
    EXPECT_THROW(command(client, {"BLPOP", test_key("empty"), "2"}), DependencyUnavailable);
    const auto took = Clock::now() - start;
    EXPECT_GE(took, 290ms);
    EXPECT_LT(took, 1s);
    EXPECT_TRUE(run_on(io_, client.ping()));
}

// A caller cancelled while it waits gets operation_aborted at once; its reply, when it comes,
// is dropped, and the next caller on the connection gets its own reply.
TEST_F(RedisTest, CancelledCallerGetsAbortedAndLaterRepliesStayMatched) {
    RedisOptions patient = options();
    patient.command_timeout = 5s;
    RedisClient client(patient);
    EXPECT_TRUE(run_on(io_, client.ping()));

    asio::cancellation_signal cancel;
    bool aborted = false;
    bool finished = false;
    asio::co_spawn(io_, client.command({"BLPOP", test_key("empty"), "1"}),
                   asio::bind_cancellation_slot(
                       cancel.slot(), [&](std::exception_ptr error, RedisReply) {
                           finished = true;
                           try {
                               if (error) std::rethrow_exception(error);
                           } catch (const boost::system::system_error& e) {
                               aborted = e.code() == asio::error::operation_aborted;
                           }
                       }));
    io_.run_for(50ms);  // BLPOP written, its caller asleep
    const auto start = Clock::now();
    cancel.emit(asio::cancellation_type::terminal);
    while (!finished && io_.run_one_for(5s) > 0) {
    }
    EXPECT_TRUE(aborted);
    EXPECT_LT(Clock::now() - start, 500ms);

    const std::string key = test_key("after");
    EXPECT_EQ(command(client, {"SET", key, "1"}).text, "OK");  // queued behind the BLPOP
    EXPECT_EQ(command(client, {"GET", key}).text, "1");
}

TEST_F(RedisTest, PendingMaxBoundsCommandsInFlight) {
    RedisOptions bounded = options();
    bounded.pending_max = 10;
    RedisClient client(bounded);
    std::atomic<int> ok = 0;
    std::atomic<int> overloaded = 0;
    // All 15 start in the same turn, before any reply: 10 fit, 5 are refused at once.
    for (int i = 0; i < 15; ++i) {
        asio::co_spawn(io_, client.command(args({"PING"})),
                       [&](std::exception_ptr error, RedisReply reply) {
                           if (!error) {
                               ok += reply.text == "PONG";
                               return;
                           }
                           try {
                               std::rethrow_exception(error);
                           } catch (const DependencyUnavailable& e) {
                               overloaded += std::string(e.what()) == "redis: overloaded";
                           } catch (...) {
                           }
                       });
    }
    while (ok + overloaded < 15 && io_.run_one_for(5s) > 0) {
    }
    EXPECT_EQ(ok, 10);
    EXPECT_EQ(overloaded, 5);
    // A pipeline counts each of its commands.
    std::vector<std::vector<std::string>> eleven(11, args({"PING"}));
    EXPECT_THROW(run_on(io_, client.pipeline(eleven)), DependencyUnavailable);
    std::vector<std::vector<std::string>> ten(10, args({"PING"}));
    EXPECT_EQ(run_on(io_, client.pipeline(ten)).size(), 10u);
}

// Redis stops mid-run: calls fail with DependencyUnavailable (none hangs or crashes); once it
// is back, calls succeed again on a new connection.
TEST_F(RedisTest, SurvivesRedisGoingAwayAndComingBack) {
    RedisOptions quick = options();
    quick.connect_timeout = 300ms;
    quick.command_timeout = 500ms;
    RedisClient client(quick);
    const std::string key = test_key("k");
    EXPECT_EQ(command(client, {"SET", key, "before"}).text, "OK");

    ASSERT_TRUE(environment->stop());
    for (int i = 0; i < 5; ++i) {
        EXPECT_LT(seconds_to_fail(client, {"GET", key}), 1.0);
    }
    EXPECT_FALSE(run_on(io_, client.ping()));

    ASSERT_TRUE(environment->start());
    EXPECT_TRUE(run_on(io_, client.ping()));  // the server persists nothing: the key is gone
    EXPECT_EQ(command(client, {"SET", key, "after"}).text, "OK");
    EXPECT_EQ(command(client, {"GET", key}).text, "after");
}

// The client may go first: its links close on their own threads when their io_contexts run
// again, or are destroyed with them if they never do. Also with a call in flight.
TEST_F(RedisTest, ClientDestroyedBeforeItsIoContexts) {
    auto client = std::make_unique<RedisClient>(options());
    EXPECT_TRUE(run_on(io_, client->ping()));
    client.reset();
    io_.restart();
    io_.poll();  // runs the posted close

    auto never_run_again = std::make_unique<asio::io_context>();
    client = std::make_unique<RedisClient>(options());
    EXPECT_TRUE(run_on(*never_run_again, client->ping()));
    asio::co_spawn(*never_run_again, client->command({"BLPOP", test_key("empty"), "5"}),
                   asio::detached);
    never_run_again->run_for(50ms);  // BLPOP written, its caller waiting
    client.reset();
    never_run_again.reset();
}

// ... or after them: the links die with their io_contexts, even with calls in flight.
TEST_F(RedisTest, ClientDestroyedAfterItsIoContexts) {
    RedisClient client(options());
    {
        asio::io_context io;
        EXPECT_TRUE(run_on(io, client.ping()));
        asio::co_spawn(io, client.command({"BLPOP", test_key("empty"), "5"}), asio::detached);
        io.run_for(50ms);
    }
    asio::io_context io;  // may reuse the address: a new connection anyway
    EXPECT_TRUE(run_on(io, client.ping()));
}

// A call in flight when the client is destroyed fails instead of hanging.
TEST_F(RedisTest, ClientDestroyedWithACallInFlight) {
    RedisOptions patient = options();
    patient.command_timeout = 10s;
    auto client = std::make_unique<RedisClient>(patient);
    asio::io_context io;
    auto work = asio::make_work_guard(io);
    std::thread runner([&] { io.run(); });
    // Started on the io_context's thread, like every call.
    std::promise<std::future<RedisReply>> handoff;
    asio::post(io, [&] {
        handoff.set_value(asio::co_spawn(
            io, client->command({"BLPOP", test_key("empty"), "5"}), asio::use_future));
    });
    std::future<RedisReply> blocked = handoff.get_future().get();
    std::this_thread::sleep_for(100ms);
    const auto start = Clock::now();
    client.reset();
    EXPECT_THROW(blocked.get(), DependencyUnavailable);
    EXPECT_LT(Clock::now() - start, 1s);
    work.reset();
    io.stop();
    runner.join();
}

}  // namespace
}  // namespace concertd::redis
