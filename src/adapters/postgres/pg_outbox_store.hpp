// The outbox relay's turn, reads and marks, the purge of published events, and the sales ledger consumer's store, on PostgreSQL.
#pragma once

#include "adapters/postgres/pg_pool.hpp"
#include "app/ports/storage.hpp"

namespace concertd::postgres {

class PgOutboxStore final : public app::OutboxStore {
public:
    explicit PgOutboxStore(PgPool& pool) : pool_(pool) {}
    app::Task<std::size_t> relay(int limit, domain::TimePoint now,
                                 app::PublishBatch publish) override;
    app::Task<std::int64_t> unpublished_count() override;
    app::Task<std::int64_t> purge_published(domain::TimePoint cutoff, int batch) override;

private:
    PgPool& pool_;
};

class PgSalesLedgerStore final : public app::SalesLedgerStore {
public:
    explicit PgSalesLedgerStore(PgPool& pool) : pool_(pool) {}
    app::Task<bool> record_sale(const domain::Event& event) override;

private:
    PgPool& pool_;
};

}  // namespace concertd::postgres
