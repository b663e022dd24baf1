#include "adapters/mysql/mysql_outbox_store.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <algorithm>
#include <exception>
#include <stdexcept>

#include "adapters/mysql/mysql_named_lock.hpp"
#include "adapters/mysql/mysql_rows.hpp"

namespace concertd::mysql {

namespace {

// The lock is asked for only when there is something to send (IF evaluates one branch), so an
// idle step is this one round trip and takes no lock. NULL: nothing to send; 0: another process
// has the turn; 1: the turn is this session's.
constexpr std::string_view kTakeTurn =
    "SELECT IF(EXISTS(SELECT 1 FROM outbox WHERE published_at IS NULL),"
    " GET_LOCK(?, 0), NULL)";

// Its own statement after the turn: under READ COMMITTED its snapshot includes every mark the
// previous relayer committed before it released the turn.
constexpr std::string_view kReadUnpublished =
    "SELECT id, event_id, type, aggregate_id, payload, occurred_at FROM outbox"
    " WHERE published_at IS NULL ORDER BY id LIMIT ?";

std::vector<Event> read_events(const MysqlResult& result) {
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

// Ids one mark statement takes: the relay's batch (500) in one statement, and far below the
// 65,535 placeholders a prepared statement may have.
constexpr std::size_t kMarkIdsMax = 512;

// UPDATE … WHERE id IN (?, …) for events[first, first + count), the list padded to the next
// power of two by repeating the last id: a handful of prepared statements per connection (1, 2,
// 4, … kMarkIdsMax) instead of one per batch size. Marks exactly the ids sent: a range (id
// BETWEEN first AND last) would also mark a row that committed late inside it, never read.
std::pair<std::string, std::vector<MysqlParam>> mark_statement(const std::vector<Event>& events,
                                                               std::size_t first,
                                                               std::size_t count, TimePoint now) {
    std::size_t slots = 1;
    while (slots < count) slots *= 2;
    std::string sql = "UPDATE outbox SET published_at = ? WHERE id IN (?";
    std::vector<MysqlParam> params{param(to_millis(now))};
    params.reserve(slots + 1);
    for (std::size_t i = 0; i < slots; ++i) {
        if (i > 0) sql += ", ?";
        params.push_back(param(events[first + std::min(i, count - 1)].sequence));
    }
    sql += ")";
    return {std::move(sql), std::move(params)};
}

}  // namespace

app::Task<std::size_t> MysqlOutboxStore::relay(int limit, TimePoint now,
                                               app::PublishBatch publish) {
    const auto timeout = pool_.options().statement_timeout;
    auto conn = co_await pool_.acquire();
    // Armed before the turn is asked for: whatever fails from here on (a timeout with the grant
    // already made, a refused read, a coroutine destroyed inside publish()), the connection is
    // closed rather than given back with the lock.
    NamedLockGuard guard(conn);
    const auto turn = co_await conn->execute(
        kTakeTurn, {param(lock_name(kInternalLock, pool_.options().endpoint.database, "relay"))},
        timeout);
    if (turn.optional_int64(0, 0).value_or(0) != 1) {
        guard.disarm();  // nothing to send, or another process's turn: no lock taken
        co_return 0;
    }
    auto events = read_events(
        co_await conn->execute(kReadUnpublished, {param(std::int64_t{limit})}, timeout));
    std::exception_ptr failure;
    if (!events.empty()) {
        // The turn is held while the bus takes the batch: a process killed here loses its session
        // and the lock with it; nothing was marked, so the next relayer sends the batch again.
        try {
            co_await publish(events);
        } catch (...) {
            failure = std::current_exception();
        }
        if (!failure) {
            // Committed (autocommit) before the turn is released, so the next step reads past
            // them. One statement per kMarkIdsMax events.
            for (std::size_t first = 0; first < events.size(); first += kMarkIdsMax) {
                auto [sql, params] = mark_statement(
                    events, first, std::min(kMarkIdsMax, events.size() - first), now);
                co_await conn->execute(sql, std::move(params), timeout);
            }
        }
    }
    // A bus outage fails every step: the release keeps the connection rather than reopening one
    // per step. If the release itself fails, the guard drops the connection.
    co_await conn->execute(kReleaseAllLocks, {}, timeout);
    guard.disarm();
    if (failure) std::rethrow_exception(failure);
    co_return events.size();
}

app::Task<std::int64_t> MysqlOutboxStore::purge_published(TimePoint cutoff, int batch) {
    auto conn = co_await pool_.acquire();
    // Walks outbox_unpublished (published_at, id) from the oldest published row; NULLs are not
    // < cutoff.
    auto result = co_await conn->execute(
        "DELETE FROM outbox WHERE published_at < ? ORDER BY published_at, id LIMIT ?",
        {param(to_millis(cutoff)), param(std::int64_t{batch})}, pool_.options().statement_timeout);
    co_return result.affected_rows();
}

app::Task<std::int64_t> MysqlOutboxStore::unpublished_count() {
    auto conn = co_await pool_.acquire();
    auto result = co_await conn->execute("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL",
                                         {}, pool_.options().statement_timeout);
    co_return result.int64(0, 0);
}

app::Task<bool> MysqlSalesLedgerStore::record_sale(const Event& event) {
    auto payload = boost::json::parse(event.payload_json).as_object();
    auto field = [&](const char* name) { return payload.at(name).to_number<std::int64_t>(); };
    const auto timeout = pool_.options().statement_timeout;
    const std::vector<MysqlParam> sale{
        param(event.event_id),      param(field("paymentId")), param(field("reservationId")),
        param(field("userId")),     param(field("amount")),    param(to_millis(event.occurred_at)),
        param(event.event_id)};
    auto conn = co_await pool_.acquire();
    // The dedupe row and the effect in one transaction: acted on once per event id. A plain
    // INSERT, not INSERT IGNORE (which would turn other errors into warnings too) nor ON
    // DUPLICATE KEY UPDATE (whose count, under CLIENT_FOUND_ROWS, does not tell a duplicate).
    co_await conn->query(kBegin, timeout);
    bool duplicate = false;
    try {
        co_await conn->execute(
            "INSERT INTO processed_events (consumer, event_id, processed_at)"
            " VALUES ('sales_ledger', ?, ?)",
            {param(event.event_id), param(to_millis(event.occurred_at))}, timeout);
    } catch (const MysqlError& error) {
        if (!error.is_duplicate_key()) throw;
        duplicate = true;  // the connection rolled the transaction back
    }
    if (duplicate) co_return false;
    co_await conn->execute(
        "INSERT INTO sales_ledger"
        " (event_id, payment_id, reservation_id, user_id, amount, recorded_at)"
        " SELECT ?, ?, ?, ?, ?, ? FROM DUAL"
        " WHERE NOT EXISTS (SELECT 1 FROM sales_ledger WHERE event_id = ?)",
        sale, timeout);
    co_await conn->query(kCommit, timeout);
    co_return true;
}

}  // namespace concertd::mysql
