// The outbox relay's turn, reads and marks, the purge of published events, and the sales ledger
// consumer's store, on MariaDB/MySQL (the PostgreSQL adapter's contract, app/ports/storage.hpp).
//
// The relay's turn is the session lock GET_LOCK('concertd.<database>:relay', 0) on the step's
// connection rather than a locked row (SELECT … FOR UPDATE NOWAIT on a one-row table): it needs
// no table and no transaction held open across publish(), and, like PostgreSQL's advisory lock,
// the server frees it when the session dies (a killed process, a cut network). What a session
// lock asks in return, that a connection never goes back to the pool still holding it, is kept
// by releasing it on every path and discarding the connection when the release cannot be made
// (NamedLockGuard).
//
// Round trips (libmariadb has no pipeline; each statement is one):
// - relay(): 1 when nothing is unpublished or another process has the turn (the turn is asked
//   for only when there is something to send); 4 for a step that publishes up to 512 events
//   (turn, read, mark, release; one more mark per further 512); 3 when publish() throws (turn,
//   read, release).
// - unpublished_count(), purge_published(): 1.
// - record_sale(): 4 (START TRANSACTION, processed_events, sales_ledger, COMMIT); 2 for an
//   event seen before (the duplicate key refuses the dedupe row and the transaction is rolled
//   back, one round trip inside the connection).
#pragma once

#include "adapters/mysql/mysql_pool.hpp"
#include "app/ports/storage.hpp"

namespace concertd::mysql {

class MysqlOutboxStore final : public app::OutboxStore {
public:
    // `pool` must outlive the store.
    explicit MysqlOutboxStore(MysqlPool& pool) : pool_(pool) {}
    // One step at a time over every process: a step that finds the turn taken returns 0 at once.
    // Events leave in outbox id order and are marked published only after publish() returned.
    app::Task<std::size_t> relay(int limit, domain::TimePoint now,
                                 app::PublishBatch publish) override;
    app::Task<std::int64_t> unpublished_count() override;
    // Deletes up to `batch` of the events published before `cutoff`, oldest first.
    app::Task<std::int64_t> purge_published(domain::TimePoint cutoff, int batch) override;

private:
    MysqlPool& pool_;
};

class MysqlSalesLedgerStore final : public app::SalesLedgerStore {
public:
    explicit MysqlSalesLedgerStore(MysqlPool& pool) : pool_(pool) {}
    // The processed_events row and the ledger row in one transaction: false, and nothing
    // written, when this event id was processed before.
    app::Task<bool> record_sale(const domain::Event& event) override;

private:
    MysqlPool& pool_;
};

}  // namespace concertd::mysql
