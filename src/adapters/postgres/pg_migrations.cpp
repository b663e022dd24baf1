#include "adapters/postgres/pg_migrations.hpp"

#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <stdexcept>

#include "domain/outcome.hpp"

namespace concertd::postgres {

namespace {

constexpr long kMigrationLockKey = 0x636f6e63657274;  // "concert"

using Connection = std::unique_ptr<PGconn, decltype(&PQfinish)>;
using ResultPtr = std::unique_ptr<PGresult, decltype(&PQclear)>;

ResultPtr exec(PGconn* conn, const std::string& sql) {
    ResultPtr result(PQexec(conn, sql.c_str()), PQclear);
    auto status = PQresultStatus(result.get());
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        throw std::runtime_error("postgres migration: " + std::string(PQerrorMessage(conn)));
    }
    return result;
}

}  // namespace

int apply_migrations(const std::string& conninfo, const std::vector<Migration>& migrations) {
    Connection conn(PQconnectdb(conninfo.c_str()), PQfinish);
    if (PQstatus(conn.get()) != CONNECTION_OK) {
        throw domain::DependencyUnavailable("postgres: " + std::string(PQerrorMessage(conn.get())));
    }
    exec(conn.get(), "SET client_min_messages = warning");
    exec(conn.get(), "SELECT pg_advisory_lock(" + std::to_string(kMigrationLockKey) + ")");
    exec(conn.get(),
         "CREATE TABLE IF NOT EXISTS schema_migrations ("
         " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())");
    int applied = 0;
    for (const auto& migration : migrations) {
        auto seen = exec(conn.get(), "SELECT 1 FROM schema_migrations WHERE version = " +
                                         std::to_string(migration.version));
        if (PQntuples(seen.get()) > 0) continue;
        // One simple-protocol string: the migration and its record commit together.
        exec(conn.get(), "BEGIN;\n" + std::string(migration.sql) +
                             "\n;INSERT INTO schema_migrations (version, name) VALUES (" +
                             std::to_string(migration.version) + ", '" + migration.name +
                             "');\nCOMMIT;");
        spdlog::info("postgres: applied migration {}", migration.name);
        ++applied;
    }
    exec(conn.get(), "SELECT pg_advisory_unlock(" + std::to_string(kMigrationLockKey) + ")");
    return applied;
}

}  // namespace concertd::postgres
