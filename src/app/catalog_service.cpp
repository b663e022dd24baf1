#include <algorithm>

#include "app/services.hpp"
#include "domain/rules.hpp"

namespace concertd::app {

Task<std::vector<Concert>> CatalogService::concerts() {
    co_return co_await ports_.catalog.list_concerts();
}

namespace {

// The cache is an optimization: when it is down (Redis), reads go to the database.
template <class T, class Lookup>
Task<CacheLookup<T>> lookup_or_miss(AppStats& stats, Lookup lookup) {
    try {
        co_return co_await lookup();
    } catch (const DependencyUnavailable&) {
        stats.cache_errors.add();
    }
    co_return CacheLookup<T>{};
}

template <class Put>
Task<void> put_or_skip(Put put) {
    try {
        co_await put();
    } catch (const DependencyUnavailable&) {
    }
}

}  // namespace

Task<Result<ConcertSchedules>> CatalogService::schedules(ConcertId concert) {
    if (!is_valid_id(concert)) co_return Refusal{Rejection::kValidationFailed, "concertId must be positive"};
    auto cached = co_await lookup_or_miss<ScheduleList>(
        ports_.stats, [&] { return ports_.cache.schedules(concert); });
    auto list = cached.value;
    if (list) {
        ports_.stats.cache_hits.add();
    } else {
        ports_.stats.cache_misses.add();
        auto loaded = co_await ports_.catalog.list_schedules(concert);
        if (!loaded) co_return Refusal{Rejection::kNotFound, "no such concert"};
        list = std::make_shared<const ScheduleList>(std::move(*loaded));
        co_await put_or_skip([&] { return ports_.cache.put_schedules(concert, list, cached.generation); });
    }
    // Future dates only; entries hold raw state, so the filter runs on every read.
    auto now = ports_.clock.now();
    ConcertSchedules result{concert, {}};
    std::copy_if(list->begin(), list->end(), std::back_inserter(result.schedules),
                 [now](const ScheduleSummary& s) { return s.starts_at > now; });
    co_return result;
}

Task<Result<std::shared_ptr<const SeatMap>>> CatalogService::seat_map(ScheduleId schedule) {
    if (!is_valid_id(schedule)) co_return Refusal{Rejection::kValidationFailed, "scheduleId must be positive"};
    auto cached = co_await lookup_or_miss<SeatMap>(ports_.stats,
                                                   [&] { return ports_.cache.seat_map(schedule); });
    if (cached.value) {
        ports_.stats.cache_hits.add();
        co_return std::move(cached.value);
    }
    ports_.stats.cache_misses.add();
    auto loaded = co_await ports_.catalog.seat_map(schedule);
    if (!loaded) co_return Refusal{Rejection::kNotFound, "no such schedule"};
    auto map = std::make_shared<const SeatMap>(std::move(*loaded));
    co_await put_or_skip([&] { return ports_.cache.put_seat_map(schedule, map, cached.generation); });
    co_return map;
}

}  // namespace concertd::app
