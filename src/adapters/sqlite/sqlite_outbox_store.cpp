#include "adapters/sqlite/sqlite_outbox_store.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "adapters/sqlite/sqlite_rows.hpp"

namespace concertd::sqlite {

using detail::Connection;
using detail::Transaction;

// One process owns the SQLite file, and its relay loop is one coroutine: steps never overlap.
app::Task<std::size_t> SqliteOutboxStore::relay(int limit, TimePoint now,
                                                app::PublishBatch publish) {
    auto events = co_await db_.read([limit](Connection& db) {
        auto query = db.prepare(
            "SELECT id, event_id, type, aggregate_id, payload, occurred_at FROM outbox"
            " WHERE published_at IS NULL ORDER BY id LIMIT ?");
        query->bind(1, std::int64_t{limit});
        std::vector<Event> events;
        while (query->step()) {
            Event event;
            event.sequence = query->column_int64(0);
            event.event_id = std::string(query->column_text(1));
            event.type = std::string(query->column_text(2));
            event.aggregate_id = query->column_int64(3);
            event.payload_json = std::string(query->column_text(4));
            event.occurred_at = from_millis(query->column_int64(5));
            events.push_back(std::move(event));
        }
        return events;
    });
    if (events.empty()) co_return 0;
    co_await publish(events);
    co_await db_.write([&events, now](Connection& db) {
        Transaction tx(db, Transaction::Kind::kImmediate);
        auto mark = db.prepare("UPDATE outbox SET published_at = ? WHERE id = ?");
        for (const auto& event : events) {
            mark->bind(1, to_millis(now)).bind(2, event.sequence).execute();
            mark->reset();
        }
        tx.commit();
    });
    co_return events.size();
}

app::Task<std::int64_t> SqliteOutboxStore::purge_published(TimePoint cutoff, int batch) {
    co_return co_await db_.write([cutoff, batch](Connection& db) {
        auto purge = db.prepare(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox"
            " WHERE published_at IS NOT NULL AND published_at < ? ORDER BY id LIMIT ?)");
        purge->bind(1, to_millis(cutoff)).bind(2, std::int64_t{batch}).execute();
        return static_cast<std::int64_t>(db.changes());
    });
}

app::Task<std::int64_t> SqliteOutboxStore::unpublished_count() {
    co_return co_await db_.read([](Connection& db) {
        auto query = db.prepare("SELECT count(*) FROM outbox WHERE published_at IS NULL");
        return query->step() ? query->column_int64(0) : std::int64_t{0};
    });
}

app::Task<bool> SqliteSalesLedgerStore::record_sale(const Event& event) {
    // Parse before touching the database: a malformed payload is the event's fault, not ours.
    auto payload = boost::json::parse(event.payload_json).as_object();
    std::int64_t payment_id = payload.at("paymentId").to_number<std::int64_t>();
    std::int64_t reservation_id = payload.at("reservationId").to_number<std::int64_t>();
    std::int64_t user_id = payload.at("userId").to_number<std::int64_t>();
    std::int64_t amount = payload.at("amount").to_number<std::int64_t>();
    co_return co_await db_.write([=, &event](Connection& db) {
        Transaction tx(db, Transaction::Kind::kImmediate);
        {
            auto seen = db.prepare(
                "INSERT INTO processed_events (consumer, event_id, processed_at)"
                " VALUES ('sales_ledger', ?, ?) ON CONFLICT DO NOTHING");
            seen->bind(1, event.event_id).bind(2, to_millis(event.occurred_at)).execute();
            if (db.changes() == 0) return false;  // acted on before
        }
        auto insert = db.prepare(
            "INSERT INTO sales_ledger"
            " (event_id, payment_id, reservation_id, user_id, amount, recorded_at)"
            " VALUES (?, ?, ?, ?, ?, ?)");
        insert->bind(1, event.event_id)
            .bind(2, payment_id)
            .bind(3, reservation_id)
            .bind(4, user_id)
            .bind(5, amount)
            .bind(6, to_millis(event.occurred_at))
            .execute();
        tx.commit();
        return true;
    });
}

}  // namespace concertd::sqlite
