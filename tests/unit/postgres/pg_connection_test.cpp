// PgConnection and PgPool against a throwaway PostgreSQL 15 cluster (scripts/pg-start.sh),
// started once for this binary. Skipped, with the reason, when the cluster cannot start.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "adapters/postgres/detail/pg_connection.hpp"
#include "adapters/postgres/pg_pool.hpp"
#include "domain/outcome.hpp"

namespace concertd::postgres {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using detail::param;
using detail::PgConnection;
using detail::PgError;
using detail::PgParam;
using detail::PgResult;
using detail::PgStatement;
using domain::DependencyUnavailable;
using Clock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kTimeout = 5000ms;

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

// A TCP port on 127.0.0.1 where nothing listens (bound, then closed).
int unused_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
    ::close(fd);
    return ntohs(address.sin_port);
}

// A server that never answers: it listens, so the kernel completes the TCP handshake, but it
// never accepts or writes; libpq then waits for its reply until the connect timeout.
class SilentServer {
public:
    SilentServer() {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t length = sizeof(address);
        ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address));
        ::listen(fd_, 128);
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
        port_ = ntohs(address.sin_port);
    }
    ~SilentServer() { ::close(fd_); }
    SilentServer(const SilentServer&) = delete;
    SilentServer& operator=(const SilentServer&) = delete;

    std::string conninfo() const {
        return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/postgres";
    }

private:
    int fd_ = -1;
    int port_ = 0;
};

// One cluster for the whole binary, in a temporary directory.
class PostgresEnvironment : public ::testing::Environment {
public:
    void SetUp() override {
        std::string pattern = (std::filesystem::temp_directory_path() / "concertd-pg-XXXXXX");
        if (!::mkdtemp(pattern.data())) {
            reason_ = "mkdtemp failed";
            return;
        }
        dir_ = pattern;
        auto [status, output] = run_command(script("pg-start.sh") + " " + dir_);
        if (status != 0 || !output.starts_with("postgresql://")) {
            reason_ = "scripts/pg-start.sh failed (exit " + std::to_string(status) + ")";
            return;
        }
        url_ = output;
        port_ = url_.substr(url_.rfind(':') + 1, url_.rfind('/') - url_.rfind(':') - 1);
    }

    void TearDown() override {
        if (dir_.empty()) return;
        run_command(script("pg-stop.sh") + " " + dir_ + " immediate");
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }

    // Stops the server as a crash would (-m immediate).
    bool stop() { return run_command(script("pg-stop.sh") + " " + dir_ + " immediate").first == 0; }
    // Starts it again on the same port.
    bool start() {
        return run_command(script("pg-start.sh") + " " + dir_ + " " + port_).first == 0;
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

auto* const environment = dynamic_cast<PostgresEnvironment*>(
    ::testing::AddGlobalTestEnvironment(new PostgresEnvironment));

class PgTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (environment->url().empty()) {
            GTEST_SKIP() << "PostgreSQL not available: " << environment->reason();
        }
    }

    // Runs a coroutine made by `make` to completion on io_; returns (or throws) its result.
    template <class Make>
    auto run(Make make) {
        io_.restart();
        auto result = asio::co_spawn(io_, std::move(make), asio::use_future);
        io_.run();
        return result.get();
    }

    std::unique_ptr<PgConnection> connect(std::string conninfo = environment->url(),
                                          std::chrono::milliseconds timeout = kTimeout,
                                          app::Counter* round_trips = nullptr) {
        return run([this, conninfo, timeout, round_trips]() {
            return PgConnection::connect(io_.get_executor(), conninfo, timeout, round_trips);
        });
    }

    PgResult execute(PgConnection& connection, std::string_view sql,
                     std::vector<PgParam> params = {},
                     std::chrono::milliseconds timeout = kTimeout) {
        return run([&connection, sql, params, timeout]() {
            return connection.execute(sql, params, timeout);
        });
    }

    std::vector<PgResult> pipeline(PgConnection& connection, std::vector<PgStatement> statements,
                                   std::chrono::milliseconds timeout = kTimeout) {
        return run([&connection, statements = std::move(statements), timeout]() {
            return connection.pipeline(statements, timeout);
        });
    }

    // A fresh table for one test.
    void create_table(PgConnection& connection, const std::string& name) {
        pipeline(connection, {{"DROP TABLE IF EXISTS " + name, {}},
                              {"CREATE TABLE " + name + " (id bigint PRIMARY KEY, holder text)",
                               {}}});
    }

    std::string pool_conninfo(const std::string& application) const {
        return environment->url() + "?application_name=" + application;
    }

    // Acquires from `pool` and returns the backend's pid.
    static asio::awaitable<std::int64_t> backend_pid(PgPool& pool) {
        auto connection = co_await pool.acquire();
        PgResult result = co_await connection->execute("SELECT pg_backend_pid()::bigint", {},
                                                       kTimeout);
        co_return result.int64(0, 0);
    }

    // Acquires from `pool`, holds the connection for `hold`; counts DependencyUnavailable.
    static asio::awaitable<void> borrow(PgPool& pool, std::chrono::milliseconds hold,
                                        std::atomic<int>& unavailable) {
        try {
            auto connection = co_await pool.acquire();
            asio::steady_timer pause(co_await asio::this_coro::executor, hold);
            co_await pause.async_wait(asio::use_awaitable);
        } catch (const DependencyUnavailable&) {
            ++unavailable;
        }
    }

    asio::io_context io_;
};

TEST_F(PgTest, ConnectsAndRunsAQuery) {
    auto connection = connect();
    EXPECT_TRUE(connection->healthy());
    EXPECT_FALSE(connection->in_transaction());
    PgResult result = execute(*connection, "SELECT 1::bigint, 'one'::text");
    ASSERT_EQ(result.rows(), 1);
    EXPECT_EQ(result.int64(0, 0), 1);
    EXPECT_EQ(result.text(0, 1), "one");
    EXPECT_TRUE(connection->healthy());
}

TEST_F(PgTest, PassesParametersAndNulls) {
    auto connection = connect();
    PgResult result = execute(*connection,
                              "SELECT $1::bigint, $2::text, $3::bigint, $4::text, "
                              "$3::bigint IS NULL, $5::bigint",
                              {param(-9'000'000'000'000), param("héllo 'quoted'"), std::nullopt,
                               std::nullopt, param(std::int64_t{7})});
    ASSERT_EQ(result.rows(), 1);
    EXPECT_EQ(result.int64(0, 0), -9'000'000'000'000);
    EXPECT_EQ(result.text(0, 1), "héllo 'quoted'");
    EXPECT_TRUE(result.is_null(0, 2));
    EXPECT_EQ(result.optional_int64(0, 2), std::nullopt);
    EXPECT_TRUE(result.is_null(0, 3));
    EXPECT_TRUE(result.boolean(0, 4));
    EXPECT_EQ(result.optional_int64(0, 5), 7);
    EXPECT_THROW(result.int64(0, 1), std::runtime_error);
}

TEST_F(PgTest, RunsATransactionAsOnePipeline) {
    auto connection = connect();
    create_table(*connection, "pipeline_seats");
    auto results = pipeline(*connection,
                            {{"BEGIN", {}},
                             {"INSERT INTO pipeline_seats VALUES ($1, $2)", {param(1), param("a")}},
                             {"SELECT holder FROM pipeline_seats WHERE id = $1", {param(1)}},
                             {"COMMIT", {}}});
    ASSERT_EQ(results.size(), 4u);
    EXPECT_EQ(results[1].affected_rows(), 1);
    ASSERT_EQ(results[2].rows(), 1);
    EXPECT_EQ(results[2].text(0, 0), "a");
    EXPECT_FALSE(connection->in_transaction());
    PgResult count = execute(*connection, "SELECT count(*) FROM pipeline_seats");
    EXPECT_EQ(count.int64(0, 0), 1);
}

// concertd_db_round_trips_total: a pipeline of several statements is one round trip; a failed
// pipeline inside a transaction costs one more, for the ROLLBACK; the connect costs none.
TEST_F(PgTest, CountsOneRoundTripPerPipeline) {
    app::Counter round_trips;
    auto connection = connect(environment->url(), kTimeout, &round_trips);
    EXPECT_EQ(round_trips.get(), 0u);
    create_table(*connection, "counted_seats");
    EXPECT_EQ(round_trips.get(), 1u);
    pipeline(*connection, {{"BEGIN", {}},
                           {"INSERT INTO counted_seats VALUES ($1, $2)", {param(1), param("a")}},
                           {"SELECT holder FROM counted_seats WHERE id = $1", {param(1)}},
                           {"COMMIT", {}}});
    EXPECT_EQ(round_trips.get(), 2u);
    execute(*connection, "SELECT 1");
    EXPECT_EQ(round_trips.get(), 3u);
    EXPECT_THROW(pipeline(*connection,
                          {{"BEGIN", {}},
                           {"INSERT INTO counted_seats VALUES ($1, $2)", {param(1), param("b")}}}),
                 PgError);
    EXPECT_EQ(round_trips.get(), 5u);  // the pipeline, then its ROLLBACK
    EXPECT_FALSE(connection->in_transaction());
}

TEST_F(PgTest, UniqueViolationRollsBackTheWholeTransaction) {
    auto connection = connect();
    create_table(*connection, "unique_seats");
    execute(*connection, "INSERT INTO unique_seats VALUES ($1, $2)", {param(1), param("first")});
    try {
        pipeline(*connection,
                 {{"BEGIN", {}},
                  {"INSERT INTO unique_seats VALUES ($1, $2)", {param(2), param("second")}},
                  {"INSERT INTO unique_seats VALUES ($1, $2)", {param(1), param("again")}},
                  {"SELECT count(*) FROM unique_seats", {}},
                  {"COMMIT", {}}});
        FAIL() << "expected a unique violation";
    } catch (const PgError& error) {
        EXPECT_TRUE(error.is_unique_violation()) << error.sqlstate() << " " << error.what();
        EXPECT_FALSE(error.is_retryable());
    }
    EXPECT_TRUE(connection->healthy());
    EXPECT_FALSE(connection->in_transaction());
    // The insert of id 2 in the same pipeline was rolled back with the rest.
    PgResult rows = execute(*connection, "SELECT id FROM unique_seats ORDER BY id");
    ASSERT_EQ(rows.rows(), 1);
    EXPECT_EQ(rows.int64(0, 0), 1);

    // A transaction across two pipelines, failing in the second, is rolled back too.
    pipeline(*connection, {{"BEGIN", {}},
                           {"INSERT INTO unique_seats VALUES ($1, $2)", {param(3), param("c")}}});
    EXPECT_TRUE(connection->in_transaction());
    EXPECT_THROW(pipeline(*connection,
                          {{"INSERT INTO unique_seats VALUES ($1, $2)", {param(1), param("d")}},
                           {"COMMIT", {}}}),
                 PgError);
    EXPECT_FALSE(connection->in_transaction());
    EXPECT_EQ(execute(*connection, "SELECT count(*) FROM unique_seats").int64(0, 0), 1);

    // Outside BEGIN (one implicit transaction up to the sync) the connection is clean too.
    EXPECT_THROW(execute(*connection, "INSERT INTO unique_seats VALUES ($1, $2)",
                         {param(1), param("e")}),
                 PgError);
    EXPECT_TRUE(connection->healthy());
    auto results = pipeline(*connection,
                            {{"BEGIN", {}},
                             {"INSERT INTO unique_seats VALUES ($1, $2)", {param(4), param("f")}},
                             {"COMMIT", {}}});
    EXPECT_EQ(results[1].affected_rows(), 1);
}

TEST_F(PgTest, PreparesEachTextOncePerConnection) {
    auto connection = connect();
    const std::string sql = "SELECT $1::bigint + 1";
    EXPECT_EQ(execute(*connection, sql, {param(1)}).int64(0, 0), 2);
    EXPECT_EQ(execute(*connection, sql, {param(2)}).int64(0, 0), 3);
    auto results = pipeline(*connection, {{sql, {param(3)}}, {sql, {param(4)}}});
    EXPECT_EQ(results[0].int64(0, 0), 4);
    EXPECT_EQ(results[1].int64(0, 0), 5);
    // Same text twice in the first pipeline that uses it: one prepare.
    const std::string other = "SELECT $1::bigint * 2";
    results = pipeline(*connection, {{other, {param(3)}}, {other, {param(4)}}});
    EXPECT_EQ(results[1].int64(0, 0), 8);

    PgResult prepared = execute(*connection,
                                "SELECT count(*) FILTER (WHERE statement = $1), "
                                "count(*) FILTER (WHERE statement = $2) "
                                "FROM pg_prepared_statements",
                                {param(sql), param(other)});
    EXPECT_EQ(prepared.int64(0, 0), 1);
    EXPECT_EQ(prepared.int64(0, 1), 1);

    // A failed PREPARE leaves no name behind: the same text fails the same way again, rather
    // than with "prepared statement does not exist" (26000).
    for (int attempt = 0; attempt < 2; ++attempt) {
        try {
            execute(*connection, "SELEC 1");
            FAIL() << "expected a syntax error";
        } catch (const PgError& error) {
            EXPECT_EQ(error.sqlstate(), "42601") << error.what();
        }
    }
    EXPECT_EQ(execute(*connection, sql, {param(9)}).int64(0, 0), 10);
}

TEST_F(PgTest, WrongParameterCountIsARefusedStatementNotABrokenConnection) {
    auto connection = connect();
    try {
        execute(*connection, "SELECT $1::bigint, $2::bigint", {param(1)});
        FAIL() << "expected PgError";
    } catch (const PgError& error) {
        EXPECT_EQ(error.sqlstate(), "08P01") << error.what();
    }
    EXPECT_TRUE(connection->healthy());
    EXPECT_EQ(execute(*connection, "SELECT $1::bigint, $2::bigint", {param(1), param(2)})
                  .int64(0, 1),
              2);
}

TEST_F(PgTest, TimeoutBreaksTheConnection) {
    auto connection = connect();
    auto started = Clock::now();
    EXPECT_THROW(execute(*connection, "SELECT pg_sleep(2)", {}, 200ms), DependencyUnavailable);
    EXPECT_LT(Clock::now() - started, 1s);
    EXPECT_FALSE(connection->healthy());
    EXPECT_THROW(execute(*connection, "SELECT 1"), DependencyUnavailable);
}

TEST_F(PgTest, TerminatedBackendIsUnhealthyAndFailsAsUnavailable) {
    auto victim = connect();
    auto killer = connect();
    std::int64_t pid = execute(*victim, "SELECT pg_backend_pid()::bigint").int64(0, 0);
    execute(*killer, "SELECT pg_terminate_backend($1::int)", {param(pid)});
    auto deadline = Clock::now() + 2s;
    while (victim->healthy() && Clock::now() < deadline) std::this_thread::sleep_for(10ms);
    EXPECT_FALSE(victim->healthy());
    EXPECT_THROW(execute(*victim, "SELECT 1"), DependencyUnavailable);
    EXPECT_EQ(execute(*killer, "SELECT 1::bigint").int64(0, 0), 1);
}

TEST_F(PgTest, ConnectFailsFastWhereNothingListens) {
    auto started = Clock::now();
    std::string conninfo = "postgresql://postgres@127.0.0.1:" + std::to_string(unused_port()) +
                           "/postgres";
    try {
        connect(conninfo, 2000ms);
        FAIL() << "expected DependencyUnavailable";
    } catch (const DependencyUnavailable& error) {
        EXPECT_TRUE(std::string_view(error.what()).starts_with("postgres: ")) << error.what();
    }
    EXPECT_LT(Clock::now() - started, 1s);
}

TEST_F(PgTest, ConnectTimesOutOnASilentServer) {
    SilentServer silent;
    auto started = Clock::now();
    try {
        connect(silent.conninfo(), 300ms);
        FAIL() << "expected DependencyUnavailable";
    } catch (const DependencyUnavailable& error) {
        EXPECT_STREQ(error.what(), "postgres: connect timed out after 300 ms");
    }
    EXPECT_GE(Clock::now() - started, 300ms);
    EXPECT_LT(Clock::now() - started, 1s);
}

TEST_F(PgTest, PoolServesTwoThreadsWithinItsBound) {
    PgPool pool({.conninfo = pool_conninfo("pool_bound"), .connections_per_thread = 3});
    constexpr int kCoroutinesPerThread = 100;
    std::atomic<int> succeeded{0};
    std::atomic<int> failed{0};
    std::mutex pids_mutex;
    std::set<std::int64_t> pids;
    auto work = [&](asio::io_context& io) {
        for (int i = 0; i < kCoroutinesPerThread; ++i) {
            asio::co_spawn(
                io,
                [&]() -> asio::awaitable<void> {
                    auto connection = co_await pool.acquire();
                    auto result = co_await connection->execute(
                        "SELECT pg_backend_pid()::bigint, pg_sleep(0.002)", {}, kTimeout);
                    std::lock_guard lock(pids_mutex);
                    pids.insert(result.int64(0, 0));
                },
                [&](std::exception_ptr error) { ++(error ? failed : succeeded); });
        }
        io.run();
    };
    asio::io_context first;
    asio::io_context second;
    std::thread one(work, std::ref(first));
    std::thread two(work, std::ref(second));
    one.join();
    two.join();
    EXPECT_EQ(succeeded, 2 * kCoroutinesPerThread);
    EXPECT_EQ(failed, 0);
    EXPECT_LE(pids.size(), 6u);
    EXPECT_GE(pids.size(), 2u);

    auto observer = connect();
    PgResult active = execute(*observer,
                              "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                              {param("pool_bound")});
    EXPECT_LE(active.int64(0, 0), 6);
    EXPECT_GE(active.int64(0, 0), 2);
}

TEST_F(PgTest, PoolHandsOverInOrderAndTimesOutWaiting) {
    PgPool pool({.conninfo = pool_conninfo("pool_wait"),
                 .connections_per_thread = 1,
                 .acquire_timeout = 300ms});
    std::vector<int> order;
    std::atomic<int> timed_out{0};
    // The first holds the only connection for 50 ms: the next two get it in turn.
    for (int i = 0; i < 3; ++i) {
        asio::co_spawn(
            io_,
            [&, i]() -> asio::awaitable<void> {
                auto connection = co_await pool.acquire();
                order.push_back(i);
                asio::steady_timer pause(co_await asio::this_coro::executor, 50ms);
                co_await pause.async_wait(asio::use_awaitable);
            },
            asio::detached);
    }
    io_.run();
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));

    // Held for 1 s: a second coroutine gives up after acquire_timeout.
    io_.restart();
    asio::co_spawn(io_, borrow(pool, 1000ms, timed_out), asio::detached);
    auto started = Clock::now();
    Clock::duration waited{};
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
            co_await borrow(pool, 0ms, timed_out);
            waited = Clock::now() - started;
        },
        asio::detached);
    io_.run();
    EXPECT_EQ(timed_out, 1);
    EXPECT_GE(waited, 300ms);
    EXPECT_LT(waited, 900ms);
}

TEST_F(PgTest, PoolDropsConnectionsGivenBackInATransactionOrBroken) {
    PgPool pool({.conninfo = pool_conninfo("pool_drop"), .connections_per_thread = 1});
    auto [first, second, third] = run([&]() -> asio::awaitable<std::array<std::int64_t, 3>> {
        std::array<std::int64_t, 3> pids{};
        {
            auto connection = co_await pool.acquire();
            auto results = co_await connection->pipeline(
                std::array<PgStatement, 2>{PgStatement{"BEGIN", {}},
                                           PgStatement{"SELECT pg_backend_pid()::bigint", {}}},
                kTimeout);
            pids[0] = results[1].int64(0, 0);
        }  // given back inside the transaction: dropped
        {
            auto connection = co_await pool.acquire();
            EXPECT_FALSE(connection->in_transaction());
            pids[1] = (co_await connection->execute("SELECT pg_backend_pid()::bigint", {},
                                                    kTimeout))
                          .int64(0, 0);
            try {
                co_await connection->execute("SELECT pg_sleep(1)", {}, 50ms);
            } catch (const DependencyUnavailable&) {
            }
        }  // broken by the timeout: dropped
        pids[2] = co_await backend_pid(pool);
        co_return pids;
    });
    EXPECT_NE(first, second);
    EXPECT_NE(second, third);
}

TEST_F(PgTest, PoolFailsFastWhenNothingListens) {
    PgPool pool({.conninfo = "postgresql://postgres@127.0.0.1:" + std::to_string(unused_port()) +
                             "/postgres",
                 .connections_per_thread = 3,
                 .connect_timeout = 1000ms});
    std::atomic<int> unavailable{0};
    auto started = Clock::now();
    for (int i = 0; i < 50; ++i) {
        asio::co_spawn(io_, borrow(pool, 0ms, unavailable), asio::detached);
    }
    io_.run();
    EXPECT_EQ(unavailable, 50);
    EXPECT_LT(Clock::now() - started, 2s);  // connect_timeout + 1 s
}

TEST_F(PgTest, PoolFailsWithinTheConnectTimeoutWhenTheServerIsSilent) {
    SilentServer silent;
    PgPool pool({.conninfo = silent.conninfo(),
                 .connections_per_thread = 3,
                 .connect_timeout = 500ms,
                 .acquire_timeout = 5000ms});
    std::atomic<int> unavailable{0};
    auto started = Clock::now();
    for (int i = 0; i < 50; ++i) {
        asio::co_spawn(io_, borrow(pool, 0ms, unavailable), asio::detached);
    }
    io_.run();
    EXPECT_EQ(unavailable, 50);
    // Those queued behind the three connects fail with them, not one connect timeout each.
    EXPECT_LT(Clock::now() - started, 1500ms);
}

TEST_F(PgTest, PoolRecoversAfterADatabaseRestart) {
    PgPool pool({.conninfo = pool_conninfo("pool_restart"),
                 .connections_per_thread = 2,
                 .connect_timeout = 1000ms});
    auto two_pids = [&]() -> asio::awaitable<std::int64_t> {
        auto a = co_await pool.acquire();
        auto b = co_await pool.acquire();
        auto pa = (co_await a->execute("SELECT pg_backend_pid()::bigint", {}, kTimeout))
                      .int64(0, 0);
        auto pb = (co_await b->execute("SELECT pg_backend_pid()::bigint", {}, kTimeout))
                      .int64(0, 0);
        co_return pa + pb;
    };
    run(two_pids);

    ASSERT_TRUE(environment->stop());
    auto started = Clock::now();
    EXPECT_THROW(run([&]() { return backend_pid(pool); }), DependencyUnavailable);
    EXPECT_LT(Clock::now() - started, 2s);
    ASSERT_TRUE(environment->start());

    int failures = 0;
    bool recovered = false;
    for (int attempt = 0; attempt < 20 && !recovered; ++attempt) {
        try {
            run(two_pids);
            recovered = true;
        } catch (const DependencyUnavailable&) {
            ++failures;
            std::this_thread::sleep_for(100ms);
        }
    }
    ASSERT_TRUE(recovered);
    EXPECT_LE(failures, 2);
    for (int i = 0; i < 5; ++i) EXPECT_NO_THROW(run(two_pids));
}

}  // namespace
}  // namespace concertd::postgres
