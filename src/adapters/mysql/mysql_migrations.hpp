// Versioned MariaDB/MySQL migrations, embedded from migrations/mysql/*.sql, applied in order at
// start under GET_LOCK() so that several processes starting at once apply each once.
#pragma once

#include <string>
#include <vector>

#include "adapters/mysql/detail/mysql_connection.hpp"

namespace concertd::mysql {

struct Migration {
    int version;
    const char* name;
    const char* sql;
};

extern const std::vector<Migration> kMysqlMigrations;

// Connects (blocking: runs before the server starts), applies what is missing, disconnects.
// DDL commits on its own in MySQL, so a migration is not atomic: each file is written so that a
// rerun after a failure part-way can go on (CREATE TABLE IF NOT EXISTS...). Throws
// domain::DependencyUnavailable when the database cannot be reached, std::runtime_error when a
// migration fails. Returns how many ran.
int apply_migrations(const detail::MysqlEndpoint& endpoint,
                     const std::vector<Migration>& migrations);

}  // namespace concertd::mysql
