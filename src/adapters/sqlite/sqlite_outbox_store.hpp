// The outbox relay's reads and marks, the purge of published events, and the sales ledger consumer's store, on SQLite.
#pragma once

#include "adapters/sqlite/sqlite_database.hpp"
#include "app/ports/storage.hpp"

namespace concertd::sqlite {

class SqliteOutboxStore final : public app::OutboxStore {
public:
    explicit SqliteOutboxStore(SqliteDatabase& db) : db_(db) {}
    app::Task<std::size_t> relay(int limit, domain::TimePoint now,
                                 app::PublishBatch publish) override;
    app::Task<std::int64_t> unpublished_count() override;
    app::Task<std::int64_t> purge_published(domain::TimePoint cutoff, int batch) override;

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
