// The read cache of dates and seat maps. Three kinds of entry: a concert's dates (fixed at its
// creation), and per schedule its seat map and its usage (the seats not available). A dates list
// is built from the concert's dates and the usage of each, so a hold invalidates one schedule's
// entries, not the list of every date. Entries hold raw state (stored status and hold expiry),
// so a hold that passes its time reads as AVAILABLE without any invalidation. A loader stores
// only if no invalidation happened since it looked (the generation check), so a slow loader
// never puts back a state older than a commit.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "domain/types.hpp"

namespace concertd::app {

template <class T>
struct CacheLookup {
    std::shared_ptr<const T> value;  // null on a miss
    std::uint64_t generation = 0;    // pass back to put()
};

using ScheduleDates = std::vector<domain::ScheduleDate>;

struct UsagePut {
    domain::ScheduleId schedule = 0;
    std::shared_ptr<const domain::ScheduleUsage> usage;  // not null
    std::uint64_t generation = 0;                        // from the usage lookup
};

// When a read began (docs/caching.md, "The rule"): its answer must reflect every write that
// answered before this moment, so a remote check made after it serves the read as well as a
// check of its own would.
using ReadStart = std::chrono::steady_clock::time_point;

class CatalogCache {
public:
    virtual ~CatalogCache() = default;
    // A read of this map (this dates list) is coming, said before the read's queue token check:
    // a cache that checks its copies remotely may ask in the same call. Only a hint: it costs no
    // call of its own and changes no answer.
    virtual boost::asio::awaitable<void> expect_seat_map(domain::ScheduleId) { co_return; }
    virtual boost::asio::awaitable<void> expect_schedules(domain::ConcertId) { co_return; }
    virtual boost::asio::awaitable<CacheLookup<domain::SeatMap>> seat_map(
        domain::ScheduleId schedule, ReadStart since) = 0;
    virtual boost::asio::awaitable<void> put_seat_map(domain::ScheduleId schedule,
                                                      std::shared_ptr<const domain::SeatMap> map,
                                                      std::uint64_t generation) = 0;
    virtual boost::asio::awaitable<CacheLookup<ScheduleDates>> schedules(
        domain::ConcertId concert, ReadStart since) = 0;
    virtual boost::asio::awaitable<void> put_schedules(domain::ConcertId concert,
                                                       std::shared_ptr<const ScheduleDates> dates,
                                                       std::uint64_t generation) = 0;
    // One lookup per schedule, in order. No loading lock across processes: a reader misses
    // several keys at once, and waiting for other readers' loads would chain the waits; the
    // caller batches its misses with the other misses of its thread instead
    // (app/batched_loads.hpp).
    virtual boost::asio::awaitable<std::vector<CacheLookup<domain::ScheduleUsage>>> usage(
        std::span<const domain::ScheduleId> schedules, ReadStart since) = 0;
    virtual boost::asio::awaitable<void> put_usage(std::span<const UsagePut> puts) = 0;
    // After a committed change to a schedule's seats (hold, expiry, sale): its seat map and usage.
    virtual boost::asio::awaitable<void> invalidate(domain::ScheduleId schedule) = 0;
};

}  // namespace concertd::app
