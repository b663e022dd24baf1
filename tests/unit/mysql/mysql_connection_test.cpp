// MysqlConnection and MysqlPool against a throwaway MariaDB 10.11 (scripts/mariadb-start.sh),
// started once for this binary.
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <set>
#include <string>
#include <thread>

#include "adapters/mysql/mysql_pool.hpp"
#include "domain/outcome.hpp"
#include "mysql/mysql_test_server.hpp"

CONCERTD_MARIADB_ENVIRONMENT

namespace concertd::mysql {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using detail::MysqlConnection;
using detail::MysqlError;
using detail::MysqlParam;
using detail::MysqlResult;
using detail::param;
using domain::DependencyUnavailable;
using testing::environment;

constexpr std::chrono::milliseconds kTimeout = 5000ms;

class MysqlConnectionTest : public testing::MariaDbTest {
protected:
    std::unique_ptr<MysqlConnection> connect(detail::MysqlEndpoint endpoint = environment().endpoint(),
                                             std::chrono::milliseconds timeout = kTimeout,
                                             app::Counter* round_trips = nullptr) {
        return run([this, endpoint, timeout, round_trips]() {
            return MysqlConnection::connect(io_.get_executor(), endpoint, timeout, {},
                                            round_trips);
        });
    }

    MysqlResult execute(MysqlConnection& connection, std::string_view sql,
                        std::vector<MysqlParam> params = {},
                        std::chrono::milliseconds timeout = kTimeout) {
        return run([&connection, sql, params, timeout]() {
            return connection.execute(sql, params, timeout);
        });
    }

    void query(MysqlConnection& connection, std::string_view sql) {
        run([&connection, sql]() { return connection.query(sql, kTimeout); });
    }

    void create_table(MysqlConnection& connection, const std::string& name) {
        query(connection, "DROP TABLE IF EXISTS " + name);
        query(connection, "CREATE TABLE " + name +
                              " (id BIGINT PRIMARY KEY AUTO_INCREMENT, holder TEXT) ENGINE=InnoDB");
    }
};

TEST(MysqlUrl, ParsesEveryPart) {
    auto endpoint = detail::parse_mysql_url("mysql://us%40er:p%3Ass@db.local:3307/concert");
    EXPECT_EQ(endpoint.user, "us@er");
    EXPECT_EQ(endpoint.password, "p:ss");
    EXPECT_EQ(endpoint.host, "db.local");
    EXPECT_EQ(endpoint.port, 3307u);
    EXPECT_EQ(endpoint.database, "concert");
    auto plain = detail::parse_mysql_url("mysql://root@127.0.0.1/db");
    EXPECT_EQ(plain.port, 3306u);
    EXPECT_EQ(plain.password, "");
    for (const char* bad : {"postgresql://a@b/c", "mysql://a@b", "mysql://a@b/", "mysql://b/c",
                            "mysql://a@b:0/c", "mysql://a@b:99999/c", "mysql://a@:1/c",
                            "mysql://a@b/c?ssl=1", "mysql://a%zz@b/c"}) {
        EXPECT_THROW(detail::parse_mysql_url(bad), std::invalid_argument) << bad;
    }
}

TEST_F(MysqlConnectionTest, RunsPreparedStatementsWithEveryKindOfValue) {
    auto connection = connect();
    EXPECT_TRUE(connection->healthy());
    EXPECT_FALSE(connection->in_transaction());
    std::string long_text(5000, 'x');
    auto result = execute(*connection, "SELECT ?, ?, ?, ? IS NULL, ?, CAST(? AS CHAR)",
                          {param(-9'000'000'000'000), param("héllo 'quoted'"),
                           detail::null_param(), detail::null_param(), param(long_text),
                           param(std::int64_t{7})});
    ASSERT_EQ(result.rows(), 1);
    ASSERT_EQ(result.columns(), 6);
    EXPECT_EQ(result.int64(0, 0), -9'000'000'000'000);
    EXPECT_EQ(result.text(0, 1), "héllo 'quoted'");
    EXPECT_TRUE(result.is_null(0, 2));
    EXPECT_EQ(result.optional_int64(0, 2), std::nullopt);
    EXPECT_EQ(result.int64(0, 3), 1);
    EXPECT_EQ(result.text(0, 4), long_text);  // longer than a cell buffer: fetched again whole
    EXPECT_EQ(result.text(0, 5), "7");
    EXPECT_THROW(result.int64(0, 1), std::runtime_error);
    EXPECT_TRUE(connection->healthy());
}

TEST_F(MysqlConnectionTest, ReportsRowsAffectedAndInsertIds) {
    app::Counter round_trips;
    auto connection = connect(environment().endpoint(), kTimeout, &round_trips);
    create_table(*connection, "counted_seats");
    const auto before = round_trips.get();
    auto first = execute(*connection, "INSERT INTO counted_seats (holder) VALUES (?)",
                         {param("a")});
    auto second = execute(*connection, "INSERT INTO counted_seats (holder) VALUES (?)",
                          {param("b")});
    EXPECT_EQ(first.affected_rows(), 1);
    EXPECT_EQ(second.insert_id(), first.insert_id() + 1);
    // The statement was prepared once (one round trip more, the first time only).
    EXPECT_EQ(round_trips.get() - before, 3u);
    // CLIENT_FOUND_ROWS: an UPDATE counts the rows it matched, changed or not.
    auto same = execute(*connection, "UPDATE counted_seats SET holder = holder WHERE id = ?",
                        {param(first.insert_id())});
    EXPECT_EQ(same.affected_rows(), 1);
    auto none = execute(*connection, "UPDATE counted_seats SET holder = 'c' WHERE id = ?",
                        {param(std::int64_t{-1})});
    EXPECT_EQ(none.affected_rows(), 0);
    auto rows = execute(*connection, "SELECT id, holder FROM counted_seats ORDER BY id");
    ASSERT_EQ(rows.rows(), 2);
    EXPECT_EQ(rows.text(1, 1), "b");
}

TEST_F(MysqlConnectionTest, ARefusalInATransactionRollsItBack) {
    auto connection = connect();
    create_table(*connection, "unique_seats");
    execute(*connection, "INSERT INTO unique_seats VALUES (?, ?)", {param(1), param("first")});
    query(*connection, "START TRANSACTION");
    EXPECT_TRUE(connection->in_transaction());
    execute(*connection, "INSERT INTO unique_seats VALUES (?, ?)", {param(2), param("second")});
    try {
        execute(*connection, "INSERT INTO unique_seats VALUES (?, ?)", {param(1), param("again")});
        FAIL() << "expected a duplicate key";
    } catch (const MysqlError& error) {
        EXPECT_TRUE(error.is_duplicate_key()) << error.code() << " " << error.what();
        EXPECT_FALSE(error.is_retryable());
    }
    EXPECT_TRUE(connection->healthy());
    EXPECT_FALSE(connection->in_transaction());
    auto rows = execute(*connection, "SELECT id FROM unique_seats ORDER BY id");
    ASSERT_EQ(rows.rows(), 1);  // the insert of id 2 was rolled back with the rest
    EXPECT_EQ(rows.int64(0, 0), 1);
    // A bad statement is the caller's error, not the server's: the connection stays usable.
    EXPECT_THROW(execute(*connection, "SELECT no_such_column FROM unique_seats"), MysqlError);
    EXPECT_TRUE(connection->healthy());
    EXPECT_EQ(execute(*connection, "SELECT COUNT(*) FROM unique_seats").int64(0, 0), 1);
}

TEST_F(MysqlConnectionTest, SetsUpTheSession) {
    auto connection = connect();
    auto result = execute(*connection,
                          "SELECT @@session.tx_isolation, @@session.innodb_lock_wait_timeout,"
                          " @@session.time_zone, @@character_set_client");
    EXPECT_EQ(result.text(0, 0), "READ-COMMITTED");
    EXPECT_EQ(result.int64(0, 1), 2);
    EXPECT_EQ(result.text(0, 2), "+00:00");
    EXPECT_EQ(result.text(0, 3), "utf8mb4");
}

TEST_F(MysqlConnectionTest, AnUnreachableServerIsADependencyFailure) {
    auto endpoint = environment().endpoint();
    endpoint.port = 1;  // nothing listens there
    EXPECT_THROW(connect(endpoint), DependencyUnavailable);
    auto wrong_password = environment().endpoint();
    wrong_password.password = "wrong";
    EXPECT_THROW(connect(wrong_password), DependencyUnavailable);
}

TEST_F(MysqlConnectionTest, ATimeoutBreaksTheConnection) {
    auto connection = connect();
    auto started = std::chrono::steady_clock::now();
    EXPECT_THROW(execute(*connection, "SELECT SLEEP(?)", {param(std::int64_t{3})}, 200ms),
                 DependencyUnavailable);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
    EXPECT_FALSE(connection->healthy());
    EXPECT_THROW(execute(*connection, "SELECT 1"), DependencyUnavailable);
}

// Nothing blocks the thread: while one connection waits on a slow statement, another on the
// same io_context runs many.
TEST_F(MysqlConnectionTest, ASlowStatementDoesNotBlockTheThread) {
    auto slow = connect();
    auto quick = connect();
    int quick_done = 0;
    bool slow_done = false;
    run([&]() -> asio::awaitable<void> {
        auto executor = co_await asio::this_coro::executor;
        asio::co_spawn(
            executor,
            [&]() -> asio::awaitable<void> {
                co_await slow->execute("SELECT SLEEP(0.5)", {}, kTimeout);
                slow_done = true;
            },
            asio::detached);
        while (!slow_done) {
            co_await quick->execute("SELECT ?", {param(std::int64_t{1})}, kTimeout);
            ++quick_done;
        }
    });
    EXPECT_TRUE(slow_done);
    EXPECT_GT(quick_done, 10);
}

TEST_F(MysqlConnectionTest, ThePoolDropsAConnectionTheServerKilled) {
    MysqlPoolOptions options;
    options.endpoint = environment().endpoint();
    options.connections_per_thread = 1;
    MysqlPool pool(options);
    auto connection_id = [&]() {
        return run([&]() -> asio::awaitable<std::int64_t> {
            auto connection = co_await pool.acquire();
            auto result = co_await connection->execute("SELECT CONNECTION_ID()", {}, kTimeout);
            co_return result.int64(0, 0);
        });
    };
    auto first = connection_id();
    EXPECT_EQ(connection_id(), first);  // the same connection, reused
    auto killer = connect();
    query(*killer, "KILL " + std::to_string(first));
    std::this_thread::sleep_for(100ms);
    auto second = connection_id();  // the dead one was dropped on acquire, a new one opened
    EXPECT_NE(second, first);
}

}  // namespace
}  // namespace concertd::mysql

namespace concertd::mysql {
namespace {

TEST_F(MysqlConnectionTest, MigrationsApplyOnceAndFormTheSchema) {
    auto endpoint = environment().fresh_database("migrations_test");
    EXPECT_EQ(apply_migrations(endpoint, kMysqlMigrations), 0);  // already there: nothing runs
    auto connection = connect(endpoint);
    auto versions = execute(*connection, "SELECT COUNT(*) FROM schema_migrations");
    EXPECT_EQ(versions.int64(0, 0), static_cast<std::int64_t>(kMysqlMigrations.size()));
    auto admission = execute(*connection, "SELECT budget FROM queue_admission WHERE id = 1");
    EXPECT_EQ(admission.rows(), 1);
}

}  // namespace
}  // namespace concertd::mysql
