#include "adapters/sqlite/migrations.hpp"

#include <spdlog/spdlog.h>

#include <chrono>

#include "adapters/sqlite/detail/sqlite_connection.hpp"

namespace concertd::sqlite {

int apply_migrations(detail::Connection& connection, const std::vector<Migration>& migrations) {
    connection.exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)");
    int applied = 0;
    for (const auto& migration : migrations) {
        detail::Transaction tx(connection, detail::Transaction::Kind::kImmediate);
        {
            auto seen = connection.prepare("SELECT 1 FROM schema_migrations WHERE version = ?");
            seen->bind(1, std::int64_t{migration.version});
            if (seen->step()) continue;
        }
        connection.exec(migration.sql);
        auto record = connection.prepare(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)");
        auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
        record->bind(1, std::int64_t{migration.version})
            .bind(2, std::string_view(migration.name))
            .bind(3, std::int64_t{now_ms})
            .execute();
        tx.commit();
        spdlog::info("sqlite: applied migration {}", migration.name);
        ++applied;
    }
    return applied;
}

}  // namespace concertd::sqlite
