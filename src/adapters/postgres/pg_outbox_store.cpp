#include "adapters/postgres/pg_outbox_store.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "adapters/postgres/pg_rows.hpp"

namespace concertd::postgres {

app::Task<std::vector<Event>> PgOutboxStore::unpublished(int limit) {
    auto conn = co_await pool_.acquire();
    auto result = co_await conn->execute(
        "SELECT id, event_id, type, aggregate_id, payload, occurred_at FROM outbox"
        " WHERE published_at IS NULL ORDER BY id LIMIT $1",
        {param(std::int64_t{limit})}, pool_.options().statement_timeout);
    std::vector<Event> events;
    events.reserve(static_cast<std::size_t>(result.rows()));
    for (int row = 0; row < result.rows(); ++row) {
        Event event;
        event.sequence = result.int64(row, 0);
        event.event_id = std::string(result.text(row, 1));
        event.type = std::string(result.text(row, 2));
        event.aggregate_id = result.int64(row, 3);
        event.payload_json = std::string(result.text(row, 4));
        event.occurred_at = from_millis(result.int64(row, 5));
        events.push_back(std::move(event));
    }
    co_return events;
}

app::Task<void> PgOutboxStore::mark_published(std::vector<std::int64_t> sequences, TimePoint now) {
    if (sequences.empty()) co_return;
    // One statement for the batch: the ids as a PostgreSQL array literal.
    std::string ids = "{";
    for (std::size_t i = 0; i < sequences.size(); ++i) {
        if (i) ids += ',';
        ids += std::to_string(sequences[i]);
    }
    ids += '}';
    auto conn = co_await pool_.acquire();
    co_await conn->execute("UPDATE outbox SET published_at = $2 WHERE id = ANY($1::bigint[])",
                           {param(ids), param(to_millis(now))}, pool_.options().statement_timeout);
}

app::Task<std::int64_t> PgOutboxStore::unpublished_count() {
    auto conn = co_await pool_.acquire();
    auto result = co_await conn->execute("SELECT count(*) FROM outbox WHERE published_at IS NULL",
                                         {}, pool_.options().statement_timeout);
    co_return result.int64(0, 0);
}

app::Task<bool> PgSalesLedgerStore::record_sale(const Event& event) {
    auto payload = boost::json::parse(event.payload_json).as_object();
    auto field = [&](const char* name) { return payload.at(name).to_number<std::int64_t>(); };
    auto conn = co_await pool_.acquire();
    // The dedupe row and the effect in one transaction: acted on once per event id.
    std::vector<PgStatement> statements{
        kBegin,
        {"INSERT INTO processed_events (consumer, event_id, processed_at)"
         " VALUES ('sales_ledger', $1, $2) ON CONFLICT DO NOTHING",
         {param(event.event_id), param(to_millis(event.occurred_at))}},
        {"INSERT INTO sales_ledger (event_id, payment_id, reservation_id, user_id, amount, recorded_at)"
         " SELECT $1, $2, $3, $4, $5, $6 WHERE NOT EXISTS (SELECT 1 FROM sales_ledger WHERE event_id = $1)",
         {param(event.event_id), param(field("paymentId")), param(field("reservationId")),
          param(field("userId")), param(field("amount")), param(to_millis(event.occurred_at))}},
        kCommit};
    auto results = co_await conn->pipeline(all(statements), pool_.options().statement_timeout);
    co_return results[1].affected_rows() == 1;
}

}  // namespace concertd::postgres
