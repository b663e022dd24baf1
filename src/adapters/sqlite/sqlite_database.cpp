#include "adapters/sqlite/sqlite_database.hpp"

#include <filesystem>

#include "adapters/sqlite/migrations.hpp"
#include "domain/outcome.hpp"

namespace concertd::sqlite {

SqliteDatabase::SqliteDatabase(std::string path, int reader_count, app::Counter* round_trips)
    : path_(std::move(path)),
      round_trips_(round_trips),
      reader_pool_(static_cast<std::size_t>(reader_count)) {
    auto parent = std::filesystem::path(path_).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent);
    writer_ = std::make_unique<detail::Connection>(path_, detail::Connection::Mode::kWriter);
    apply_migrations(*writer_, kSqliteMigrations);
    checkpointer_ = std::make_unique<detail::WalCheckpointer>(path_, *writer_);
}

SqliteDatabase::~SqliteDatabase() { join(); }

void SqliteDatabase::join() {
    writer_pool_.join();
    reader_pool_.join();
}

SqliteDatabase::ReaderLease::~ReaderLease() {
    if (!connection) return;
    std::lock_guard lock(owner->readers_mutex_);
    owner->idle_readers_.push_back(std::move(connection));
}

SqliteDatabase::ReaderLease SqliteDatabase::lease_reader() {
    {
        std::lock_guard lock(readers_mutex_);
        if (!idle_readers_.empty()) {
            auto connection = std::move(idle_readers_.back());
            idle_readers_.pop_back();
            return ReaderLease{this, std::move(connection)};
        }
    }
    return ReaderLease{this, std::make_unique<detail::Connection>(
                                 path_, detail::Connection::Mode::kReader)};
}

void SqliteDatabase::rethrow_as_dependency_failure(const detail::SqliteError& error) {
    switch (error.primary_code()) {
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
        case SQLITE_IOERR:
        case SQLITE_FULL:
        case SQLITE_CANTOPEN:
        case SQLITE_READONLY:
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
            throw domain::DependencyUnavailable(std::string("database: ") + error.what());
        default:
            return;
    }
}

}  // namespace concertd::sqlite
