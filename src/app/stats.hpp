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
    Counter cache_hits;
    Counter cache_misses;
    Counter tokens_issued;
    Counter tokens_admitted;
    Counter after_commit_deferred;  // invalidations / token expiries kept for a dependency down
    Counter cache_errors;           // cache lookups that failed and went to the database
};

}  // namespace concertd::app
