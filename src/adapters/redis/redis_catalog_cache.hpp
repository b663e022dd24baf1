// The read cache of seat maps, schedule usage and concert dates in Redis 7, with a small
// in-process layer in front (SPEC §4 distributed mode). The consistency rule is written out in
// docs/caching.md.
//
// Keys (prefix P, default "concertd:cache:"; K is "sm:<scheduleId>" (seat map), "su:<scheduleId>"
// (usage) or "sd:<concertId>" (dates)):
//   P K      the value, compact JSON (a flat array of integers), with a kValueTtl safety TTL
//   P K ":v" the key's version: invalidate() sets it to max(version + 1, Redis µs clock); a
//            missing version is created from the clock on first lookup. So versions only grow,
//            and one never comes back, even after Redis lost its data.
//   P K ":l" the loading lock (SET NX PX kLoadLockTtl): one loader per key across processes.
//
// Guarantees, per key:
// - lookup returns a value stored for the key's current version (or null) and that version as
//   the generation; a value is in Redis only for the version it was stored under (invalidate
//   bumps the version and deletes the value in one script).
// - put stores only if the generation is still the key's version (compare-and-set in a script),
//   so a loader that looked before an invalidation never puts back the older state.
// - The in-process layer keeps (version, decoded value) per key and serves it only when, in a
//   round trip sent after the read started, Redis says the version is still that one and the
//   value has not expired there: it never serves anything older than the last invalidation
//   committed in Redis, nor outlives Redis's copy. It only saves moving and decoding the value.
//   That round trip is the thread's read barrier (read_barrier.hpp), shared with the thread's
//   other reads; a key with no local copy, or a stale one, takes the lookup script of its own
//   (usage: the keys of a read that have none take one script together).
// - Stampede protection (seat maps, dates): on a miss, one caller per key becomes the loader (it
//   takes the loading lock); the others wait up to kLoadWaitMax: callers on the loader's thread
//   until its put() wakes them, callers elsewhere polling every kLoadPollInterval. Then they
//   load anyway. Usage entries have none (catalog_cache.hpp says why).
// - lookup and invalidate throw domain::DependencyUnavailable when Redis cannot be reached
//   (invalidate after one retry); put never does (caching is optional, the value is loaded).
// - Thread-safe. A lookup served locally costs a share of a barrier call; otherwise one round
//   trip (plus the barrier's share when a stale local copy was there; more only while waiting
//   for another loader). One per put, one per invalidate.
#pragma once

#include <array>
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "adapters/redis/read_barrier.hpp"
#include "adapters/redis/redis_client.hpp"
#include "app/ports/catalog_cache.hpp"

namespace concertd::redis {

// Compact encodings of the cached values (exposed for tests). decode_* return nullopt for
// anything but a well-formed value of the current format.
std::string encode_seat_map(const domain::SeatMap& map);
std::optional<domain::SeatMap> decode_seat_map(std::string_view text);
std::string encode_schedule_dates(const app::ScheduleDates& dates);
std::optional<app::ScheduleDates> decode_schedule_dates(std::string_view text);
std::string encode_schedule_usage(const domain::ScheduleUsage& usage);
std::optional<domain::ScheduleUsage> decode_schedule_usage(std::string_view text);

class RedisCatalogCache final : public app::CatalogCache {
public:
    inline static const std::string kDefaultKeyPrefix = "concertd:cache:";
    // Bounds how long a value can outlive a missed invalidation (a writer that died between
    // its commit and its invalidate).
    static constexpr std::chrono::seconds kValueTtl{60};
    static constexpr std::chrono::milliseconds kLoadLockTtl{250};
    static constexpr std::chrono::milliseconds kLoadWaitMax{100};
    static constexpr std::chrono::milliseconds kLoadPollInterval{5};
    static constexpr std::size_t kShardCount = 16;
    // In-process entries per shard and kind; past that an arbitrary one is dropped.
    static constexpr std::size_t kLocalEntriesPerShardMax = 1024;

    struct Counters {
        std::uint64_t local_hits = 0;  // served by the in-process layer
        std::uint64_t redis_hits = 0;  // value moved from Redis
        std::uint64_t misses = 0;      // the caller loads
        std::uint64_t waits = 0;       // lookups that waited for another loader
    };

    // `client` must outlive the cache, `barrier` too (shared with the queue, so a read's two
    // checks share calls); null: a barrier of the cache's own.
    explicit RedisCatalogCache(RedisClient& client, std::string key_prefix = kDefaultKeyPrefix,
                               ReadBarrier* barrier = nullptr);
    RedisCatalogCache(const RedisCatalogCache&) = delete;
    RedisCatalogCache& operator=(const RedisCatalogCache&) = delete;

    // Registers the key's version check in the thread's next barrier call when a local copy is
    // here (the only case lookup checks through the barrier).
    boost::asio::awaitable<void> expect_seat_map(domain::ScheduleId schedule) override;
    boost::asio::awaitable<void> expect_schedules(domain::ConcertId concert) override;
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
    // The local copies are confirmed in one barrier call for all; the others are read in one
    // script (no loading lock). So at most two round trips, and one put for all the misses.
    boost::asio::awaitable<std::vector<app::CacheLookup<domain::ScheduleUsage>>> usage(
        std::span<const domain::ScheduleId> schedules, app::ReadStart since) override;
    boost::asio::awaitable<void> put_usage(std::span<const app::UsagePut> puts) override;
    // Bumps the seat map's and the usage's versions and deletes both values in one script;
    // drops the local copies.
    boost::asio::awaitable<void> invalidate(domain::ScheduleId schedule) override;

    Counters counters() const;

private:
    enum class Kind : std::uint8_t { kSeatMap, kDates, kUsage };

    template <class T>
    struct LocalEntry {
        std::uint64_t version = 0;
        std::shared_ptr<const T> value;
    };
    // One cache line apart, so two threads on two shards do not share a line.
    template <class T>
    struct alignas(64) Shard {
        std::mutex mutex;
        std::unordered_map<std::int64_t, LocalEntry<T>> entries;
    };
    template <class T>
    using Shards = std::array<Shard<T>, kShardCount>;

    // A key's three Redis names (P K, P K ":v", P K ":l"), built without the heap when the
    // prefix is short: a lookup builds them on every cached read.
    class Keys {
    public:
        Keys(std::string_view prefix, Kind kind, std::int64_t id);
        std::string_view value() const { return {text(), base_size_}; }
        std::string_view version() const { return {text(), base_size_ + 2}; }
        std::string_view loading() const { return {text() + base_size_ + 2, base_size_ + 2}; }

    private:
        static constexpr std::size_t kInlineSize = 128;
        const char* text() const { return heap_.empty() ? inline_.data() : heap_.data(); }
        std::array<char, kInlineSize> inline_;  // P K ":v" P K ":l"
        std::string heap_;                      // the same, when it does not fit
        std::size_t base_size_ = 0;             // the size of P K
    };
    Keys keys_for(Kind kind, std::int64_t id) const { return Keys(prefix_, kind, id); }

    template <class T>
    boost::asio::awaitable<void> expect(Kind kind, std::int64_t id);
    template <class T>
    boost::asio::awaitable<app::CacheLookup<T>> lookup(Kind kind, std::int64_t id,
                                                       app::ReadStart since);
    template <class T>
    boost::asio::awaitable<void> put(Kind kind, std::int64_t id, std::shared_ptr<const T> value,
                                     std::uint64_t generation);

    template <class T>
    Shards<T>& shards();
    template <class T>
    std::optional<LocalEntry<T>> local_get(std::int64_t id);
    template <class T>
    void local_store(std::int64_t id, std::uint64_t version, std::shared_ptr<const T> value);
    template <class T>
    void local_erase(std::int64_t id);

    RedisClient& client_;
    const std::string prefix_;
    const std::string owner_;  // this instance's loading-lock owner
    std::unique_ptr<ReadBarrier> own_barrier_;
    ReadBarrier& barrier_;

    Shards<domain::SeatMap> seat_maps_;
    Shards<app::ScheduleDates> schedule_dates_;
    Shards<domain::ScheduleUsage> usages_;

    std::atomic<std::uint64_t> local_hits_{0};
    std::atomic<std::uint64_t> redis_hits_{0};
    std::atomic<std::uint64_t> misses_{0};
    std::atomic<std::uint64_t> waits_{0};
};

}  // namespace concertd::redis
