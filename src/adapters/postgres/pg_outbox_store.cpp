#include "adapters/postgres/pg_outbox_store.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <exception>

#include "adapters/postgres/pg_rows.hpp"

namespace concertd::postgres {

namespace {

// The relay's turn: one key for every process on the database (advisory lock space of concertd).
constexpr std::int64_t kRelayLockKey = 7160000002;

std::vector<Event> read_events(const PgResult& result) {
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
    return events;
}

// The events' outbox ids as one bigint[] literal.
std::string id_array(const std::vector<Event>& events) {
    std::vector<std::int64_t> ids;
    ids.reserve(events.size());
    for (const auto& event : events) ids.push_back(event.sequence);
    return int64_array(ids);
}

}  // namespace

app::Task<std::size_t> PgOutboxStore::relay(int limit, TimePoint now, app::PublishBatch publish) {
    const auto timeout = pool_.options().statement_timeout;
    auto conn = co_await pool_.acquire();
    // The read is its own statement after the lock: under READ COMMITTED its snapshot includes
    // everything the previous relayer committed before it let go of the turn.
    std::vector<PgStatement> claim{
        kBegin,
        {"SELECT pg_try_advisory_xact_lock($1)", {param(kRelayLockKey)}},
        {"SELECT id, event_id, type, aggregate_id, payload, occurred_at FROM outbox"
         " WHERE published_at IS NULL ORDER BY id LIMIT $1",
         {param(std::int64_t{limit})}}};
    auto results = co_await conn->pipeline(all(claim), timeout);
    auto events = read_events(results[2]);
    if (!results[1].boolean(0, 0) || events.empty()) {
        co_await conn->execute("ROLLBACK", {}, timeout);
        co_return 0;
    }
    // The turn is held while the bus takes the batch: a process killed here loses its session,
    // and with it the lock and the open transaction; the next relayer sends the batch again.
    std::exception_ptr failure;
    try {
        co_await publish(events);
    } catch (...) {
        failure = std::current_exception();
    }
    if (failure) {
        co_await conn->execute("ROLLBACK", {}, timeout);  // no co_await inside a catch block
        std::rethrow_exception(failure);
    }
    std::vector<PgStatement> mark{
        {"UPDATE outbox SET published_at = $2 WHERE id = ANY($1::bigint[])",
         {param(id_array(events)), param(to_millis(now))}},
        kCommit};
    co_await conn->pipeline(all(mark), timeout);
    co_return events.size();
}

app::Task<std::int64_t> PgOutboxStore::purge_published(TimePoint cutoff, int batch) {
    auto conn = co_await pool_.acquire();
    auto result = co_await conn->execute(
        "DELETE FROM outbox WHERE id = ANY(ARRAY(SELECT id FROM outbox"
        " WHERE published_at IS NOT NULL AND published_at < $1 ORDER BY id LIMIT $2))",
        {param(to_millis(cutoff)), param(std::int64_t{batch})}, pool_.options().statement_timeout);
    co_return result.affected_rows();
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
