#include "adapters/memory/catalog_cache.hpp"

#include <utility>

namespace concertd::memory {

std::size_t MemoryCatalogCache::shard_index(std::int64_t key) {
    // Ids are sequential: multiply so neighbours land on different shards, take the top bits.
    static_assert((kShardCount & (kShardCount - 1)) == 0, "a power of two");
    const std::uint64_t mixed = static_cast<std::uint64_t>(key) * 0x9E3779B97F4A7C15ULL;
    return static_cast<std::size_t>(mixed >> 32) & (kShardCount - 1);
}

template <class T>
app::CacheLookup<T> MemoryCatalogCache::lookup(SlotMap<T> Shard::*map, std::int64_t key) {
    Shard& shard = shards_[shard_index(key)];
    std::lock_guard lock(shard.mutex);
    const SlotMap<T>& slots = shard.*map;
    const auto it = slots.find(key);
    if (it == slots.end()) {
        return {};  // never stored nor invalidated: generation 0
    }
    return {it->second.value, it->second.generation};
}

template <class T>
void MemoryCatalogCache::store(SlotMap<T> Shard::*map, std::int64_t key,
                               std::shared_ptr<const T> value, std::uint64_t generation) {
    Shard& shard = shards_[shard_index(key)];
    std::lock_guard lock(shard.mutex);
    SlotMap<T>& slots = shard.*map;
    const auto it = slots.find(key);
    if (it == slots.end()) {
        // An absent key is at generation 0 (it was never invalidated, keys are never evicted).
        if (generation == 0 && slots.size() < kMaxKeysPerShard) {
            slots.emplace(key, Slot<T>{0, std::move(value)});
        }
        return;
    }
    if (it->second.generation == generation) {
        it->second.value = std::move(value);
    }
}

template <class T>
void MemoryCatalogCache::bump(SlotMap<T> Shard::*map, std::int64_t key) {
    Shard& shard = shards_[shard_index(key)];
    std::shared_ptr<const T> dropped;  // freed after the mutex, a seat map can be large
    std::lock_guard lock(shard.mutex);
    SlotMap<T>& slots = shard.*map;
    auto it = slots.find(key);
    if (it == slots.end()) {
        if (slots.size() >= kMaxKeysPerShard) {
            return;  // a full shard takes no new key, from put() either: nothing can go stale
        }
        it = slots.emplace(key, Slot<T>{}).first;
    }
    ++it->second.generation;
    dropped = std::move(it->second.value);
}

boost::asio::awaitable<app::CacheLookup<domain::SeatMap>> MemoryCatalogCache::seat_map(
    domain::ScheduleId schedule, app::ReadStart) {  // in-process: always current
    co_return lookup(&Shard::seat_maps, schedule);
}

boost::asio::awaitable<void> MemoryCatalogCache::put_seat_map(
    domain::ScheduleId schedule, std::shared_ptr<const domain::SeatMap> map,
    std::uint64_t generation) {
    store(&Shard::seat_maps, schedule, std::move(map), generation);
    co_return;
}

boost::asio::awaitable<app::CacheLookup<app::ScheduleDates>> MemoryCatalogCache::schedules(
    domain::ConcertId concert, app::ReadStart) {
    co_return lookup(&Shard::schedules, concert);
}

boost::asio::awaitable<void> MemoryCatalogCache::put_schedules(
    domain::ConcertId concert, std::shared_ptr<const app::ScheduleDates> dates,
    std::uint64_t generation) {
    store(&Shard::schedules, concert, std::move(dates), generation);
    co_return;
}

boost::asio::awaitable<std::vector<app::CacheLookup<domain::ScheduleUsage>>>
MemoryCatalogCache::usage(std::span<const domain::ScheduleId> schedules, app::ReadStart) {
    std::vector<app::CacheLookup<domain::ScheduleUsage>> found;
    found.reserve(schedules.size());
    for (const domain::ScheduleId schedule : schedules) found.push_back(lookup(&Shard::usage, schedule));
    co_return found;
}

boost::asio::awaitable<void> MemoryCatalogCache::put_usage(std::span<const app::UsagePut> puts) {
    for (const app::UsagePut& put : puts) store(&Shard::usage, put.schedule, put.usage, put.generation);
    co_return;
}

boost::asio::awaitable<void> MemoryCatalogCache::invalidate(domain::ScheduleId schedule) {
    bump(&Shard::seat_maps, schedule);
    bump(&Shard::usage, schedule);
    co_return;
}

boost::asio::awaitable<app::CacheLookup<domain::SeatMap>> NullCatalogCache::seat_map(
    domain::ScheduleId, app::ReadStart) {
    co_return app::CacheLookup<domain::SeatMap>{};
}

boost::asio::awaitable<void> NullCatalogCache::put_seat_map(domain::ScheduleId,
                                                            std::shared_ptr<const domain::SeatMap>,
                                                            std::uint64_t) {
    co_return;
}

boost::asio::awaitable<app::CacheLookup<app::ScheduleDates>> NullCatalogCache::schedules(
    domain::ConcertId, app::ReadStart) {
    co_return app::CacheLookup<app::ScheduleDates>{};
}

boost::asio::awaitable<void> NullCatalogCache::put_schedules(
    domain::ConcertId, std::shared_ptr<const app::ScheduleDates>, std::uint64_t) {
    co_return;
}

boost::asio::awaitable<std::vector<app::CacheLookup<domain::ScheduleUsage>>>
NullCatalogCache::usage(std::span<const domain::ScheduleId> schedules, app::ReadStart) {
    co_return std::vector<app::CacheLookup<domain::ScheduleUsage>>(schedules.size());
}

boost::asio::awaitable<void> NullCatalogCache::put_usage(std::span<const app::UsagePut>) {
    co_return;
}

boost::asio::awaitable<void> NullCatalogCache::invalidate(domain::ScheduleId) {
    co_return;
}

}  // namespace concertd::memory
