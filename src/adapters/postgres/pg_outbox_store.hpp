// The outbox relay's reads and marks, and the sales ledger consumer's store, on PostgreSQL.
#pragma once

#include "adapters/postgres/pg_pool.hpp"
#include "app/ports/storage.hpp"

namespace concertd::postgres {

class PgOutboxStore final : public app::OutboxStore {
public:
    explicit PgOutboxStore(PgPool& pool) : pool_(pool) {}
    app::Task<std::vector<domain::Event>> unpublished(int limit) override;
    app::Task<void> mark_published(std::vector<std::int64_t> sequences,
                                   domain::TimePoint now) override;
    app::Task<std::int64_t> unpublished_count() override;

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
