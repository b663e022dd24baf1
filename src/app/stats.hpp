// Counters of the use cases for /metrics: relaxed atomics, cheap on the hot path, summed when
// scraped.
#pragma once

#include <atomic>
#include <cstdint>

namespace concertd::app {

struct Counter {
    std::atomic<std::uint64_t> value{0};
    void add(std::uint64_t n = 1) { value.fetch_add(n, std::memory_order_relaxed); }
    std::uint64_t get() const { return value.load(std::memory_order_relaxed); }
};

struct AppStats {
    Counter holds_succeeded;
    Counter holds_rejected;          // seat unavailable
    Counter hold_retries;            // optimistic version conflicts that were retried
    Counter holds_expired;           // by the sweeper
    Counter charges_succeeded;
    Counter charge_retries;
    Counter payments_succeeded;
    Counter payments_replayed;       // answered from an idempotency key
    Counter payment_retries;
    Counter lock_timeouts;
    Counter events_published;
    Counter events_consumed;
    Counter events_dead_lettered;   // poison events sent to the dead-letter topic
    Counter cache_hits;
    Counter cache_misses;
    Counter cache_loads_shared;     // misses answered by another miss's database load
    Counter tokens_issued;
    Counter tokens_admitted;
    Counter after_commit_deferred;  // invalidations / token expiries kept for a dependency down
    Counter cache_errors;           // cache lookups that failed and went to the database
    // Database round trips, counted by the storage adapters (they get a pointer to it), for the
    // cost of a strategy per success. PostgreSQL: one per pipeline sent and answered (several
    // statements, one sync), and one per ROLLBACK the connection sends after a failed pipeline;
    // opening a connection is not counted. SQLite (in process, no network): one per job run on
    // the writer or a reader thread, i.e. one per transaction or read. Its own cache line: both
    // I/O threads (PostgreSQL) or the SQLite threads bump it on every call.
    alignas(64) Counter db_round_trips;
};

}  // namespace concertd::app
