#include <algorithm>

#include "app/batched_loads.hpp"
#include "app/services.hpp"
#include "app/shared_loads.hpp"
#include "domain/rules.hpp"

namespace concertd::app {

using UsageLoads = BatchedLoads<ScheduleId, std::shared_ptr<const ScheduleUsage>>;

struct CatalogService::Loads {
    SharedLoads<ConcertId, std::shared_ptr<const ScheduleDates>> schedules;  // null: no concert
    SharedLoads<ScheduleId, std::shared_ptr<const SeatMap>> seat_maps;    // null: no schedule
    UsageLoads usage;
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
    using Loaded = std::shared_ptr<const Value>;
    bool shared = false;
    auto value = co_await loads.get(
        key,
        [&]() -> Task<Loaded> {
            auto loaded = co_await fetch();
            if (!loaded) co_return nullptr;
            co_return std::make_shared<const Value>(std::move(*loaded));
        },
        [&](const Loaded& fresh) -> Task<void> {
            if (fresh) co_await put_or_skip([&] { return put(fresh); });
        },
        shared);
    if (shared) stats.cache_loads_shared.add();
    co_return value;
}

// One query for all the keys.
Task<UsageLoads::Found> load_usage(Ports& ports, const UsageLoads::Generations& keys) {
    std::vector<ScheduleId> ids;
    ids.reserve(keys.size());
    for (const auto& [id, generation] : keys) ids.push_back(id);
    auto rows = co_await ports.catalog.schedule_usage(std::move(ids));
    UsageLoads::Found found;
    for (auto& row : rows) {
        const ScheduleId id = row.schedule_id;
        if (!keys.contains(id)) continue;
        found.emplace(id, std::make_shared<const ScheduleUsage>(std::move(row)));
    }
    co_return found;
}

// One put for all a usage load found, each under the generation looked up before the load.
Task<void> store_usage(Ports& ports, const UsageLoads::Generations& keys,
                       const UsageLoads::Found& found) {
    std::vector<UsagePut> puts;
    puts.reserve(found.size());
    for (const auto& [id, usage] : found) puts.push_back({id, usage, keys.at(id)});
    co_await put_or_skip([&] { return ports.cache.put_usage(puts); });
}

}  // namespace

Task<Result<ConcertSchedules>> CatalogService::schedules(ConcertId concert, ReadStart since) {
    if (!is_valid_id(concert)) co_return Refusal{Rejection::kValidationFailed, "concertId must be positive"};
    // The cache is an optimization: when it is down (Redis), reads go to the database. Caught
    // here rather than in a helper coroutine: one frame less per cached read.
    CacheLookup<ScheduleDates> cached;
    try {
        cached = co_await ports_.cache.schedules(concert, since);
    } catch (const DependencyUnavailable&) {
        ports_.stats.cache_errors.add();
    }
    auto dates = cached.value;
    if (!dates) {
        dates = co_await load_on_miss(
            loads_->schedules, concert, [&] { return ports_.catalog.list_schedules(concert); },
            [&](auto fresh) { return ports_.cache.put_schedules(concert, fresh, cached.generation); },
            ports_.stats);
        if (!dates) co_return Refusal{Rejection::kNotFound, "no such concert"};
    }
    // Future dates only; usage entries hold raw state, so availability is reckoned at each read.
    const auto now = ports_.clock.now();
    ConcertSchedules result{concert, {}};
    std::vector<ScheduleId> future;
    for (const ScheduleDate& date : *dates) {
        if (date.starts_at > now) {
            result.schedules.push_back({date, nullptr});
            future.push_back(date.id);
        }
    }
    bool loaded = !cached.value;
    auto usages = co_await usage_of(future, since, loaded);
    // A schedule whose usage the database did not return is gone: left out.
    std::size_t kept = 0;
    for (std::size_t i = 0; i < usages.size(); ++i) {
        if (!usages[i]) continue;
        result.schedules[kept] = std::move(result.schedules[i]);
        result.schedules[kept++].usage = std::move(usages[i]);
    }
    result.schedules.resize(kept);
    // Counted per read: a hit when the whole list came from the cache.
    (loaded ? ports_.stats.cache_misses : ports_.stats.cache_hits).add();
    co_return result;
}

Task<std::vector<std::shared_ptr<const ScheduleUsage>>> CatalogService::usage_of(
    const std::vector<ScheduleId>& schedules, ReadStart since, bool& loaded) {
    std::vector<CacheLookup<ScheduleUsage>> cached(schedules.size());
    try {
        cached = co_await ports_.cache.usage(schedules, since);
    } catch (const DependencyUnavailable&) {
        ports_.stats.cache_errors.add();
    }
    std::vector<std::shared_ptr<const ScheduleUsage>> usages(schedules.size());
    UsageLoads::Generations asked;
    for (std::size_t i = 0; i < schedules.size(); ++i) {
        usages[i] = std::move(cached[i].value);
        if (!usages[i]) asked.emplace(schedules[i], cached[i].generation);
    }
    if (asked.empty()) co_return usages;
    loaded = true;
    bool shared = false;
    const auto found = co_await loads_->usage.get(
        asked, [&](const UsageLoads::Generations& keys) { return load_usage(ports_, keys); },
        [&](const UsageLoads::Generations& keys, const UsageLoads::Found& loaded) {
            return store_usage(ports_, keys, loaded);
        },
        shared);
    if (shared) ports_.stats.cache_loads_shared.add();
    for (std::size_t i = 0; i < schedules.size(); ++i) {
        if (usages[i]) continue;
        if (const auto it = found->find(schedules[i]); it != found->end()) usages[i] = it->second;
    }
    co_return usages;
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
