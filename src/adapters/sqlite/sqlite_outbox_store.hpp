// The outbox relay's reads and marks, and the sales ledger consumer's store, on SQLite.
#pragma once

#include "adapters/sqlite/sqlite_database.hpp"
#include "app/ports/storage.hpp"

namespace concertd::sqlite {

class SqliteOutboxStore final : public app::OutboxStore {
public:
    explicit SqliteOutboxStore(SqliteDatabase& db) : db_(db) {}
    app::Task<std::vector<domain::Event>> unpublished(int limit) override;
    app::Task<void> mark_published(std::vector<std::int64_t> sequences,
                                   domain::TimePoint now) override;
    app::Task<std::int64_t> unpublished_count() override;

private:
    SqliteDatabase& db_;
};

class SqliteSalesLedgerStore final : public app::SalesLedgerStore {
public:
    explicit SqliteSalesLedgerStore(SqliteDatabase& db) : db_(db) {}
    app::Task<bool> record_sale(const domain::Event& event) override;

private:
    SqliteDatabase& db_;
};

}  // namespace concertd::sqlite
