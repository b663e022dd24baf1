// Versioned PostgreSQL migrations, embedded from migrations/postgres/*.sql, applied in order at
// start under an advisory lock so that several processes starting at once apply each once.
#pragma once

#include <string>
#include <vector>

namespace concertd::postgres {

struct Migration {
    int version;
    const char* name;
    const char* sql;
};

extern const std::vector<Migration> kPostgresMigrations;

// Connects (blocking: runs before the server starts), applies what is missing, disconnects.
// Throws domain::DependencyUnavailable when the database cannot be reached, std::runtime_error
// when a migration fails. Returns how many ran.
int apply_migrations(const std::string& conninfo, const std::vector<Migration>& migrations);

}  // namespace concertd::postgres
