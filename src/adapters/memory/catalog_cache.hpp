// In-process read caches of seat maps, schedule usage and concert dates (SPEC §4 embedded
// mode), and the cache to use when caching must be off.
//
// MemoryCatalogCache guarantees, per key (seat maps and usage by schedule, dates by concert):
// - a lookup returns the stored value (or null) and the key's current generation;
// - invalidate() bumps the generations of the schedule's seat map and usage, drops both values;
// - put() stores only if the generation passed is still the key's current one, so a loader that
//   looked before an invalidation never puts back the older state.
// Keys are spread over kShardCount mutex-guarded shards, so lookups of different keys from
// different threads do not contend. Generations are kept for the life of the cache (one small
// entry per schedule or concert ever cached or invalidated), up to kMaxKeysPerShard per shard;
// past that, new keys are not cached at all (no eviction, so the generation rule holds).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "app/ports/catalog_cache.hpp"

namespace concertd::memory {

class MemoryCatalogCache final : public app::CatalogCache {
public:
    static constexpr std::size_t kShardCount = 16;
    static constexpr std::size_t kMaxKeysPerShard = 65'536;

    MemoryCatalogCache() = default;
    MemoryCatalogCache(const MemoryCatalogCache&) = delete;
    MemoryCatalogCache& operator=(const MemoryCatalogCache&) = delete;

    boost::asio::awaitable<app::CacheLookup<domain::SeatMap>> seat_map(
        domain::ScheduleId schedule, app::ReadStart since) override;
    boost::asio::awaitable<void> put_seat_map(domain::ScheduleId schedule,
                                              std::shared_ptr<const domain::SeatMap> map,
                                              std::uint64_t generation) override;
    boost::asio::awaitable<app::CacheLookup<app::ScheduleDates>> schedules(
        domain::ConcertId concert, app::ReadStart since) override;
    boost::asio::awaitable<void> put_schedules(domain::ConcertId concert,
                                               std::shared_ptr<const app::ScheduleDates> dates,
                                               std::uint64_t generation) override;
    boost::asio::awaitable<std::vector<app::CacheLookup<domain::ScheduleUsage>>> usage(
        std::span<const domain::ScheduleId> schedules, app::ReadStart since) override;
    boost::asio::awaitable<void> put_usage(std::span<const app::UsagePut> puts) override;
    boost::asio::awaitable<void> invalidate(domain::ScheduleId schedule) override;

private:
    template <class T>
    struct Slot {
        std::uint64_t generation = 0;
        std::shared_ptr<const T> value;
    };

    template <class T>
    using SlotMap = std::unordered_map<std::int64_t, Slot<T>>;

    // One cache line apart, so two threads on two shards do not share a line.
    struct alignas(64) Shard {
        std::mutex mutex;
        SlotMap<domain::SeatMap> seat_maps;
        SlotMap<app::ScheduleDates> schedules;
        SlotMap<domain::ScheduleUsage> usage;
    };

    static std::size_t shard_index(std::int64_t key);

    template <class T>
    app::CacheLookup<T> lookup(SlotMap<T> Shard::*map, std::int64_t key);
    template <class T>
    void store(SlotMap<T> Shard::*map, std::int64_t key, std::shared_ptr<const T> value,
               std::uint64_t generation);
    template <class T>
    void bump(SlotMap<T> Shard::*map, std::int64_t key);

    std::array<Shard, kShardCount> shards_;
};

// Caching off: every lookup misses (generation 0), puts and invalidations do nothing.
class NullCatalogCache final : public app::CatalogCache {
public:
    boost::asio::awaitable<app::CacheLookup<domain::SeatMap>> seat_map(
        domain::ScheduleId schedule, app::ReadStart since) override;
    boost::asio::awaitable<void> put_seat_map(domain::ScheduleId schedule,
                                              std::shared_ptr<const domain::SeatMap> map,
                                              std::uint64_t generation) override;
    boost::asio::awaitable<app::CacheLookup<app::ScheduleDates>> schedules(
        domain::ConcertId concert, app::ReadStart since) override;
    boost::asio::awaitable<void> put_schedules(domain::ConcertId concert,
                                               std::shared_ptr<const app::ScheduleDates> dates,
                                               std::uint64_t generation) override;
    boost::asio::awaitable<std::vector<app::CacheLookup<domain::ScheduleUsage>>> usage(
        std::span<const domain::ScheduleId> schedules, app::ReadStart since) override;
    boost::asio::awaitable<void> put_usage(std::span<const app::UsagePut> puts) override;
    boost::asio::awaitable<void> invalidate(domain::ScheduleId schedule) override;
};

}  // namespace concertd::memory
