// Versioned schema migrations, embedded from migrations/sqlite/*.sql at build time and applied
// in order at start (each in its own transaction, recorded in schema_migrations).
#pragma once

#include <vector>

namespace concertd::sqlite {

struct Migration {
    int version;
    const char* name;
    const char* sql;
};

extern const std::vector<Migration> kSqliteMigrations;

namespace detail {
class Connection;
}
// Applies the migrations not yet recorded; returns how many ran.
int apply_migrations(detail::Connection& connection, const std::vector<Migration>& migrations);

}  // namespace concertd::sqlite
