#include <algorithm>

#include "app/services.hpp"
#include "app/shared_loads.hpp"
#include "domain/rules.hpp"

namespace concertd::app {

struct CatalogService::Loads {
    SharedLoads<ConcertId, std::shared_ptr<const ScheduleList>> schedules;  // null: no concert
    SharedLoads<ScheduleId, std::shared_ptr<const SeatMap>> seat_maps;    // null: no schedule
};

CatalogService::CatalogService(Ports& ports) : ports_(ports), loads_(std::make_unique<Loads>()) {}
CatalogService::~CatalogService() = default;

Task<std::vector<Concert>> CatalogService::concerts() {
    co_return co_await ports_.catalog.list_concerts();
}

namespace {

template <class Put>
Task<void> put_or_skip(Put put) {
    try {
        co_await put();
    } catch (const DependencyUnavailable&) {
    }
}

// A miss: the database read `fetch()` (an optional value), shared with the misses of the same
// key on this thread, stored with `put(value)`, which carries the generation the reader looked
// up before the load began. Null when the key does not exist.
template <class Value, class Key, class Fetch, class Put>
Task<std::shared_ptr<const Value>> load_on_miss(SharedLoads<Key, std::shared_ptr<const Value>>& loads,
                                                Key key, Fetch fetch, Put put, AppStats& stats) {
    bool shared = false;
    auto value = co_await loads.get(
        key,
        [&]() -> Task<std::shared_ptr<const Value>> {
            auto loaded = co_await fetch();
            if (!loaded) co_return nullptr;
            auto fresh = std::make_shared<const Value>(std::move(*loaded));
            co_await put_or_skip([&] { return put(fresh); });
            co_return fresh;
        },
        shared);
    if (shared) stats.cache_loads_shared.add();
    co_return value;
}

}  // namespace

Task<Result<ConcertSchedules>> CatalogService::schedules(ConcertId concert, ReadStart since) {
    if (!is_valid_id(concert)) co_return Refusal{Rejection::kValidationFailed, "concertId must be positive"};
    // The cache is an optimization: when it is down (Redis), reads go to the database. Caught
    // here rather than in a helper coroutine: one frame less per cached read.
    CacheLookup<ScheduleList> cached;
    try {
        cached = co_await ports_.cache.schedules(concert, since);
    } catch (const DependencyUnavailable&) {
        ports_.stats.cache_errors.add();
    }
    auto list = cached.value;
    if (list) {
        ports_.stats.cache_hits.add();
    } else {
        ports_.stats.cache_misses.add();
        list = co_await load_on_miss(
            loads_->schedules, concert, [&] { return ports_.catalog.list_schedules(concert); },
            [&](auto fresh) { return ports_.cache.put_schedules(concert, fresh, cached.generation); },
            ports_.stats);
        if (!list) co_return Refusal{Rejection::kNotFound, "no such concert"};
    }
    // Future dates only; entries hold raw state, so the filter runs on every read.
    auto now = ports_.clock.now();
    ConcertSchedules result{concert, {}};
    std::copy_if(list->begin(), list->end(), std::back_inserter(result.schedules),
                 [now](const ScheduleSummary& s) { return s.starts_at > now; });
    co_return result;
}

Task<Result<std::shared_ptr<const SeatMap>>> CatalogService::seat_map(ScheduleId schedule,
                                                                     ReadStart since) {
    if (!is_valid_id(schedule)) co_return Refusal{Rejection::kValidationFailed, "scheduleId must be positive"};
    CacheLookup<SeatMap> cached;  // as in schedules(): Redis down is a miss
    try {
        cached = co_await ports_.cache.seat_map(schedule, since);
    } catch (const DependencyUnavailable&) {
        ports_.stats.cache_errors.add();
    }
    if (cached.value) {
        ports_.stats.cache_hits.add();
        co_return std::move(cached.value);
    }
    ports_.stats.cache_misses.add();
    auto map = co_await load_on_miss(
        loads_->seat_maps, schedule, [&] { return ports_.catalog.seat_map(schedule); },
        [&](auto fresh) { return ports_.cache.put_seat_map(schedule, fresh, cached.generation); },
        ports_.stats);
    if (!map) co_return Refusal{Rejection::kNotFound, "no such schedule"};
    co_return map;
}

Task<void> CatalogService::expect_schedules(ConcertId concert) {
    if (is_valid_id(concert)) co_await ports_.cache.expect_schedules(concert);
}

Task<void> CatalogService::expect_seat_map(ScheduleId schedule) {
    if (is_valid_id(schedule)) co_await ports_.cache.expect_seat_map(schedule);
}

}  // namespace concertd::app
