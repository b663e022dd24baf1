#include "adapters/mysql/mysql_migrations.hpp"

#include <mysql.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <stdexcept>

#include "domain/outcome.hpp"

namespace concertd::mysql {

namespace {

constexpr const char* kMigrationLock = "concertd.migrations";
constexpr int kMigrationLockWaitSeconds = 60;

using Connection = std::unique_ptr<MYSQL, decltype(&mysql_close)>;

std::string describe(MYSQL* mysql) {
    return std::string(mysql_error(mysql)) + " [" + std::to_string(mysql_errno(mysql)) + "]";
}

// Runs `sql` (one or more statements) and drains every result it gives; returns the first
// column of the first row of the last result that had rows, if any.
std::optional<std::string> exec(MYSQL* mysql, const std::string& sql) {
    if (mysql_real_query(mysql, sql.data(), sql.size()) != 0) {
        throw std::runtime_error("mysql migration: " + describe(mysql));
    }
    std::optional<std::string> value;
    while (true) {
        if (MYSQL_RES* result = mysql_store_result(mysql)) {
            if (MYSQL_ROW row = mysql_fetch_row(result); row && row[0]) value = row[0];
            mysql_free_result(result);
        } else if (mysql_field_count(mysql) != 0) {
            throw std::runtime_error("mysql migration: " + describe(mysql));
        }
        int next = mysql_next_result(mysql);
        if (next == -1) break;
        if (next > 0) throw std::runtime_error("mysql migration: " + describe(mysql));
    }
    return value;
}

}  // namespace

int apply_migrations(const detail::MysqlEndpoint& endpoint,
                     const std::vector<Migration>& migrations) {
    Connection conn(mysql_init(nullptr), mysql_close);
    if (!conn) throw domain::DependencyUnavailable("mysql: cannot allocate a connection");
    MYSQL* mysql = conn.get();
    unsigned protocol = MYSQL_PROTOCOL_TCP;
    mysql_options(mysql, MYSQL_OPT_PROTOCOL, &protocol);
    mysql_options(mysql, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    unsigned timeout_seconds = 5;
    mysql_options(mysql, MYSQL_OPT_CONNECT_TIMEOUT, &timeout_seconds);
    if (!mysql_real_connect(mysql, endpoint.host.c_str(), endpoint.user.c_str(),
                            endpoint.password.c_str(), endpoint.database.c_str(), endpoint.port,
                            nullptr, CLIENT_MULTI_STATEMENTS)) {
        throw domain::DependencyUnavailable("mysql: " + describe(mysql));
    }
    exec(mysql, "SET SESSION time_zone = '+00:00'");
    auto locked = exec(mysql, "SELECT GET_LOCK('" + std::string(kMigrationLock) + "', " +
                                  std::to_string(kMigrationLockWaitSeconds) + ")");
    if (locked != "1") throw std::runtime_error("mysql migration: the migration lock is taken");
    exec(mysql,
         "CREATE TABLE IF NOT EXISTS schema_migrations (version INT PRIMARY KEY,"
         " name VARCHAR(200) NOT NULL, applied_at TIMESTAMP(3) NOT NULL DEFAULT"
         " CURRENT_TIMESTAMP(3)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4");
    int applied = 0;
    for (const auto& migration : migrations) {
        auto seen = exec(mysql, "SELECT COUNT(*) FROM schema_migrations WHERE version = " +
                                    std::to_string(migration.version));
        if (seen != "0") continue;
        exec(mysql, migration.sql);
        exec(mysql, "INSERT INTO schema_migrations (version, name) VALUES (" +
                        std::to_string(migration.version) + ", '" + migration.name + "')");
        spdlog::info("mysql: applied migration {}", migration.name);
        ++applied;
    }
    exec(mysql, "DO RELEASE_LOCK('" + std::string(kMigrationLock) + "')");
    return applied;
}

}  // namespace concertd::mysql
