#include "adapters/redis/redis_catalog_cache.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <charconv>
#include <limits>
#include <random>
#include <span>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "domain/outcome.hpp"

namespace concertd::redis {

namespace asio = boost::asio;

namespace {

using domain::DependencyUnavailable;
using Clock = std::chrono::steady_clock;
constexpr asio::as_tuple_t<asio::use_awaitable_t<>> kUseTuple{};

// --- encodings: one flat JSON array of integers, the format number first -------------------------

constexpr std::int64_t kFormat = 1;
constexpr std::int64_t kNoExpiry = -1;
constexpr std::size_t kMaxSeats = 1'000'000;
constexpr std::size_t kMaxSchedules = 100'000;

class IntWriter {
public:
    explicit IntWriter(std::size_t reserve) { out_.reserve(reserve); }
    void add(std::int64_t value) {
        out_ += out_.empty() ? '[' : ',';
        char buffer[24];
        const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
        out_.append(buffer, end);
    }
    std::string finish() && {
        out_ += out_.empty() ? "[]" : "]";
        return std::move(out_);
    }

private:
    std::string out_;
};

std::int64_t status_code(domain::SeatStatus status) {
    switch (status) {
        case domain::SeatStatus::kAvailable: return 0;
        case domain::SeatStatus::kHeld: return 1;
        case domain::SeatStatus::kSold: return 2;
    }
    return 0;
}

std::optional<domain::SeatStatus> status_of(std::int64_t code) {
    switch (code) {
        case 0: return domain::SeatStatus::kAvailable;
        case 1: return domain::SeatStatus::kHeld;
        case 2: return domain::SeatStatus::kSold;
        default: return std::nullopt;
    }
}

std::int64_t ms_of(domain::TimePoint t) { return t.time_since_epoch().count(); }
domain::TimePoint time_of(std::int64_t ms) {
    return domain::TimePoint(std::chrono::milliseconds(ms));
}

// Reads the integers of a parsed array in order; any shortfall or non-integer is a failure.
class IntReader {
public:
    explicit IntReader(const boost::json::array& array) : array_(array) {}
    std::optional<std::int64_t> next() {
        if (index_ >= array_.size() || !array_[index_].is_int64()) return std::nullopt;
        return array_[index_++].as_int64();
    }
    std::size_t remaining() const { return array_.size() - index_; }

private:
    const boost::json::array& array_;
    std::size_t index_ = 0;
};

// Parses `text` as a JSON array of integers starting with kFormat, and hands it to `read`.
template <class Read>
auto read_ints(std::string_view text, Read read) -> decltype(read(std::declval<IntReader&>())) {
    unsigned char scratch[4096];
    boost::json::monotonic_resource resource(scratch, sizeof scratch);
    boost::system::error_code ec;
    const boost::json::value parsed = boost::json::parse(text, ec, &resource);
    if (ec || !parsed.is_array()) return std::nullopt;
    IntReader reader(parsed.get_array());
    if (reader.next() != kFormat) return std::nullopt;
    return read(reader);
}

// --- scripts -------------------------------------------------------------------------------------

// KEYS[1] version, [2] value, [3] loading lock. ARGV[1] the caller's local version ('' none),
// [2] loader owner ('' = do not try), [3] loading lock ms.
// {version, 1}: the local copy is current. {version, 2, value}. {version, 3}: a miss, the caller
// is the loader. {version, 0}: a miss while another loader works (or the caller did not try).
const RedisScript& lookup_script() {
    static const RedisScript script(R"lua(
local version = redis.call('GET', KEYS[1])
if not version then
    local clock = redis.call('TIME')
    version = string.format('%.0f', tonumber(clock[1]) * 1000000 + tonumber(clock[2]))
    redis.call('SET', KEYS[1], version)
end
if version == ARGV[1] and redis.call('EXISTS', KEYS[2]) == 1 then return {version, 1} end
local value = redis.call('GET', KEYS[2])
if value then return {version, 2, value} end
if ARGV[2] ~= '' and redis.call('SET', KEYS[3], ARGV[2], 'NX', 'PX', ARGV[3]) then
    return {version, 3}
end
return {version, 0}
)lua");
    return script;
}

// KEYS[1] version, [2] value, [3] loading lock. ARGV[1] generation, [2] value, [3] TTL ms,
// [4] loader owner. 1 when stored.
const RedisScript& put_script() {
    static const RedisScript script(R"lua(
local stored = 0
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
    stored = 1
end
if redis.call('GET', KEYS[3]) == ARGV[4] then redis.call('DEL', KEYS[3]) end
return stored
)lua");
    return script;
}

// KEYS: version, value, version, value, … Reply, flat: per key its version (created from the µs
// clock if missing) and its value ('' if none). Several keys, no loading lock (usage entries).
const RedisScript& lookup_many_script() {
    static const RedisScript script(R"lua(
local out, clock = {}, nil
for i = 1, #KEYS, 2 do
    local version = redis.call('GET', KEYS[i])
    if not version then
        clock = clock or redis.call('TIME')
        version = string.format('%.0f', tonumber(clock[1]) * 1000000 + tonumber(clock[2]))
        redis.call('SET', KEYS[i], version)
    end
    out[#out + 1] = version
    out[#out + 1] = redis.call('GET', KEYS[i + 1]) or ''
end
return out
)lua");
    return script;
}

// KEYS: version, value, … ARGV[1] TTL ms, then per key its generation and value. Reply: per key
// 1 when stored (its version was still the generation).
const RedisScript& put_many_script() {
    static const RedisScript script(R"lua(
local out = {}
for i = 1, #KEYS, 2 do
    local stored = 0
    if redis.call('GET', KEYS[i]) == ARGV[i + 1] then
        redis.call('SET', KEYS[i + 1], ARGV[i + 2], 'PX', ARGV[1])
        stored = 1
    end
    out[#out + 1] = stored
end
return out
)lua");
    return script;
}

// KEYS: version, value, version, value, … Each version becomes max(version + 1, µs clock).
const RedisScript& invalidate_script() {
    static const RedisScript script(R"lua(
local clock = redis.call('TIME')
local floor = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
for i = 1, #KEYS, 2 do
    local version = tonumber(redis.call('GET', KEYS[i]) or '0') + 1
    if version < floor then version = floor end
    redis.call('SET', KEYS[i], string.format('%.0f', version))
    redis.call('DEL', KEYS[i + 1])
end
return 1
)lua");
    return script;
}

std::string random_owner() {
    std::random_device device;
    const std::uint64_t bits = (std::uint64_t{device()} << 32) | device();
    return std::to_string(bits);
}

// --- one loader per key on each thread ---------------------------------------------------------
// A coroutine never changes thread, so the loaders of a thread need no lock. The map holds only
// raw pointers to timers in waiting frames (no Asio object outlives its io_context here).

struct LoaderKey {
    const void* cache = nullptr;
    int kind = 0;
    std::int64_t id = 0;
    bool operator==(const LoaderKey&) const = default;
};

struct LoaderKeyHash {
    std::size_t operator()(const LoaderKey& key) const noexcept {
        const auto mixed = (reinterpret_cast<std::uintptr_t>(key.cache) ^
                            static_cast<std::uint64_t>(key.id) * 0x9E3779B97F4A7C15ULL) +
                           static_cast<std::uint64_t>(key.kind);
        return static_cast<std::size_t>(mixed ^ (mixed >> 29));
    }
};

struct Loader {
    Clock::time_point deadline;
    std::vector<asio::steady_timer*> waiters;
};

constexpr std::size_t kLoadersPerThreadMax = 1024;
thread_local std::unordered_map<LoaderKey, Loader, LoaderKeyHash> t_loaders;

bool loading_on_this_thread(const LoaderKey& key) {
    const auto it = t_loaders.find(key);
    return it != t_loaders.end() && it->second.deadline > Clock::now();
}

void become_loader(const LoaderKey& key, Clock::time_point deadline) {
    if (t_loaders.size() >= kLoadersPerThreadMax) {
        const auto now = Clock::now();
        std::erase_if(t_loaders, [now](const auto& entry) {
            return entry.second.deadline <= now && entry.second.waiters.empty();
        });
    }
    t_loaders[key].deadline = deadline;  // waiters of an expired loader stay registered
}

// The loader put (or gave up): wake the waiters of this thread.
void loader_done(const LoaderKey& key) {
    const auto it = t_loaders.find(key);
    if (it == t_loaders.end()) return;
    const std::vector<asio::steady_timer*> waiters = std::move(it->second.waiters);
    t_loaders.erase(it);
    for (asio::steady_timer* timer : waiters) timer->cancel();
}

// Waits until the thread's loader of `key` is done, or until `deadline`.
asio::awaitable<void> wait_for_loader(LoaderKey key, Clock::time_point deadline) {
    const auto it = t_loaders.find(key);
    if (it == t_loaders.end()) co_return;
    asio::steady_timer timer(co_await asio::this_coro::executor,
                             std::min(it->second.deadline, deadline));
    it->second.waiters.push_back(&timer);
    struct Unregister {
        LoaderKey key;
        asio::steady_timer* timer;
        ~Unregister() {
            const auto found = t_loaders.find(key);
            if (found == t_loaders.end()) return;
            std::erase(found->second.waiters, timer);
        }
    } unregister{key, &timer};
    co_await timer.async_wait(kUseTuple);
}

asio::awaitable<void> sleep_until(Clock::time_point until) {
    asio::steady_timer timer(co_await asio::this_coro::executor, until);
    co_await timer.async_wait(kUseTuple);
}

std::uint64_t parse_version(const RedisReply& reply) {
    std::uint64_t version = 0;
    if (reply.type == RedisReply::Type::kString) {
        const char* end = reply.text.data() + reply.text.size();
        const auto [ptr, ec] = std::from_chars(reply.text.data(), end, version);
        if (ec == std::errc() && ptr == end) return version;
    }
    throw DependencyUnavailable("redis: unexpected cache version");
}

template <class T>
std::optional<T> decode(std::string_view text);
template <>
std::optional<domain::SeatMap> decode<domain::SeatMap>(std::string_view text) {
    return decode_seat_map(text);
}
template <>
std::optional<app::ScheduleDates> decode<app::ScheduleDates>(std::string_view text) {
    return decode_schedule_dates(text);
}
template <>
std::optional<domain::ScheduleUsage> decode<domain::ScheduleUsage>(std::string_view text) {
    return decode_schedule_usage(text);
}

std::string encode(const domain::SeatMap& map) { return encode_seat_map(map); }
std::string encode(const app::ScheduleDates& dates) { return encode_schedule_dates(dates); }
std::string encode(const domain::ScheduleUsage& usage) { return encode_schedule_usage(usage); }

}  // namespace

// --- encodings -----------------------------------------------------------------------------------

std::string encode_seat_map(const domain::SeatMap& map) {
    IntWriter writer(16 + map.seats.size() * 28);
    writer.add(kFormat);
    writer.add(map.schedule_id);
    writer.add(static_cast<std::int64_t>(map.seats.size()));
    for (const domain::SeatState& seat : map.seats) {
        writer.add(seat.seat_no);
        writer.add(seat.price_won);
        writer.add(status_code(seat.stored_status));
        writer.add(seat.hold_expires_at ? ms_of(*seat.hold_expires_at) : kNoExpiry);
    }
    return std::move(writer).finish();
}

std::optional<domain::SeatMap> decode_seat_map(std::string_view text) {
    return read_ints(text, [](IntReader& in) -> std::optional<domain::SeatMap> {
        domain::SeatMap map;
        const auto schedule = in.next();
        const auto count = in.next();
        if (!schedule || !count || *count < 0 || static_cast<std::size_t>(*count) > kMaxSeats ||
            in.remaining() != static_cast<std::size_t>(*count) * 4) {
            return std::nullopt;
        }
        map.schedule_id = *schedule;
        map.seats.reserve(static_cast<std::size_t>(*count));
        for (std::int64_t i = 0; i < *count; ++i) {
            const auto seat_no = in.next();
            const auto price = in.next();
            const auto status = in.next();
            const auto expiry = in.next();
            if (!seat_no || !price || !status || !expiry) return std::nullopt;
            const auto stored_status = status_of(*status);
            if (!stored_status || *seat_no < 0 ||
                *seat_no > std::numeric_limits<domain::SeatNo>::max()) {
                return std::nullopt;
            }
            domain::SeatState seat;
            seat.seat_no = static_cast<domain::SeatNo>(*seat_no);
            seat.price_won = *price;
            seat.stored_status = *stored_status;
            if (*expiry != kNoExpiry) seat.hold_expires_at = time_of(*expiry);
            map.seats.push_back(seat);
        }
        return map;
    });
}

std::string encode_schedule_dates(const app::ScheduleDates& dates) {
    IntWriter writer((2 + dates.size() * 3) * 14);
    writer.add(kFormat);
    writer.add(static_cast<std::int64_t>(dates.size()));
    for (const domain::ScheduleDate& date : dates) {
        writer.add(date.id);
        writer.add(ms_of(date.starts_at));
        writer.add(date.total_seats);
    }
    return std::move(writer).finish();
}

std::optional<app::ScheduleDates> decode_schedule_dates(std::string_view text) {
    return read_ints(text, [](IntReader& in) -> std::optional<app::ScheduleDates> {
        const auto count = in.next();
        if (!count || *count < 0 || static_cast<std::size_t>(*count) > kMaxSchedules ||
            in.remaining() != static_cast<std::size_t>(*count) * 3) {
            return std::nullopt;
        }
        app::ScheduleDates dates;
        dates.reserve(static_cast<std::size_t>(*count));
        for (std::int64_t i = 0; i < *count; ++i) {
            const auto id = in.next();
            const auto starts_at = in.next();
            const auto total = in.next();
            if (!id || !starts_at || !total || *total < 0 ||
                *total > std::numeric_limits<std::int32_t>::max()) {
                return std::nullopt;
            }
            dates.push_back({*id, time_of(*starts_at), static_cast<std::int32_t>(*total)});
        }
        return dates;
    });
}

std::string encode_schedule_usage(const domain::ScheduleUsage& usage) {
    IntWriter writer((4 + usage.hold_expiries.size()) * 14);
    writer.add(kFormat);
    writer.add(usage.schedule_id);
    writer.add(usage.sold_seats);
    writer.add(static_cast<std::int64_t>(usage.hold_expiries.size()));
    for (const domain::TimePoint expiry : usage.hold_expiries) writer.add(ms_of(expiry));
    return std::move(writer).finish();
}

std::optional<domain::ScheduleUsage> decode_schedule_usage(std::string_view text) {
    return read_ints(text, [](IntReader& in) -> std::optional<domain::ScheduleUsage> {
        const auto schedule = in.next();
        const auto sold = in.next();
        const auto holds = in.next();
        constexpr auto kSeatsMax = std::numeric_limits<std::int32_t>::max();
        if (!schedule || !sold || !holds || *sold < 0 || *sold > kSeatsMax || *holds < 0 ||
            in.remaining() != static_cast<std::size_t>(*holds)) {
            return std::nullopt;
        }
        domain::ScheduleUsage usage{*schedule, static_cast<std::int32_t>(*sold), {}};
        usage.hold_expiries.reserve(static_cast<std::size_t>(*holds));
        for (std::int64_t h = 0; h < *holds; ++h) {
            const auto expiry = in.next();
            if (!expiry) return std::nullopt;
            usage.hold_expiries.push_back(time_of(*expiry));
        }
        return usage;
    });
}

// --- the cache -----------------------------------------------------------------------------------

RedisCatalogCache::RedisCatalogCache(RedisClient& client, std::string key_prefix,
                                     ReadBarrier* barrier)
    : client_(client),
      prefix_(std::move(key_prefix)),
      owner_(random_owner()),
      own_barrier_(barrier ? nullptr : std::make_unique<ReadBarrier>(client)),
      barrier_(barrier ? *barrier : *own_barrier_) {}

RedisCatalogCache::Keys::Keys(std::string_view prefix, Kind kind, std::int64_t id) {
    char digits[24];
    const auto [digits_end, ec] = std::to_chars(digits, digits + sizeof digits, id);
    const std::string_view kind_text = kind == Kind::kSeatMap ? "sm:"
                                       : kind == Kind::kDates ? "sd:"
                                                              : "su:";
    base_size_ = prefix.size() + kind_text.size() + static_cast<std::size_t>(digits_end - digits);
    char* out = inline_.data();
    if (2 * base_size_ + 4 > inline_.size()) {
        heap_.resize(2 * base_size_ + 4);
        out = heap_.data();
    }
    for (const char* suffix : {":v", ":l"}) {
        out = std::copy(prefix.begin(), prefix.end(), out);
        out = std::copy(kind_text.begin(), kind_text.end(), out);
        out = std::copy(digits, digits_end, out);
        out = std::copy(suffix, suffix + 2, out);
    }
}

template <class T>
RedisCatalogCache::Shards<T>& RedisCatalogCache::shards() {
    if constexpr (std::is_same_v<T, domain::SeatMap>) {
        return seat_maps_;
    } else if constexpr (std::is_same_v<T, app::ScheduleDates>) {
        return schedule_dates_;
    } else {
        return usages_;
    }
}

namespace {
std::size_t shard_index(std::int64_t id) {
    // Ids are sequential: multiply so neighbours land on different shards, take the top bits.
    const std::uint64_t mixed = static_cast<std::uint64_t>(id) * 0x9E3779B97F4A7C15ULL;
    return static_cast<std::size_t>(mixed >> 32) % RedisCatalogCache::kShardCount;
}
}  // namespace

template <class T>
std::optional<RedisCatalogCache::LocalEntry<T>> RedisCatalogCache::local_get(std::int64_t id) {
    auto& shard = shards<T>()[shard_index(id)];
    std::lock_guard lock(shard.mutex);
    const auto it = shard.entries.find(id);
    if (it == shard.entries.end()) return std::nullopt;
    return it->second;
}

template <class T>
void RedisCatalogCache::local_store(std::int64_t id, std::uint64_t version,
                                    std::shared_ptr<const T> value) {
    auto& shard = shards<T>()[shard_index(id)];
    std::shared_ptr<const T> dropped;  // freed after the mutex
    std::lock_guard lock(shard.mutex);
    auto it = shard.entries.find(id);
    if (it == shard.entries.end()) {
        if (shard.entries.size() >= kLocalEntriesPerShardMax) {
            dropped = std::move(shard.entries.begin()->second.value);
            shard.entries.erase(shard.entries.begin());
        }
        shard.entries.emplace(id, LocalEntry<T>{version, std::move(value)});
        return;
    }
    if (version >= it->second.version) {  // versions only grow: keep the newest
        dropped = std::exchange(it->second.value, std::move(value));
        it->second.version = version;
    }
}

template <class T>
void RedisCatalogCache::local_erase(std::int64_t id) {
    auto& shard = shards<T>()[shard_index(id)];
    std::shared_ptr<const T> dropped;
    std::lock_guard lock(shard.mutex);
    const auto it = shard.entries.find(id);
    if (it == shard.entries.end()) return;
    dropped = std::move(it->second.value);
    shard.entries.erase(it);
}

template <class T>
boost::asio::awaitable<void> RedisCatalogCache::expect(Kind kind, std::int64_t id) {
    // Only a local copy is checked through the barrier; without one, lookup takes its script.
    if (!local_get<T>(id)) co_return;
    const Keys keys = keys_for(kind, id);
    co_await barrier_.expect_version(keys.version(), keys.value());
}

template <class T>
boost::asio::awaitable<app::CacheLookup<T>> RedisCatalogCache::lookup(Kind kind, std::int64_t id,
                                                                      app::ReadStart since) {
    const Keys keys = keys_for(kind, id);
    if (auto local = local_get<T>(id)) {
        // The common case: a copy is here, Redis only has to say it is current. The barrier
        // call is shared with the thread's other reads and sent after this one started.
        const VersionCheck current =
            co_await barrier_.check_version(keys.version(), keys.value(), since);
        if (current.value_exists && current.version) {
            if (local->version != *current.version) local = local_get<T>(id);  // updated since
            if (local && local->version == *current.version) {
                ++local_hits_;
                co_return app::CacheLookup<T>{std::move(local->value), local->version};
            }
        }
    }
    const LoaderKey loader{this, static_cast<int>(kind), id};
    const auto deadline = Clock::now() + kLoadWaitMax;
    bool waited = false;
    for (;;) {
        const std::optional<LocalEntry<T>> local = local_get<T>(id);
        // A second caller on the loader's thread must not take the loader's place.
        const bool loading_here = loading_on_this_thread(loader);
        const std::array<std::string_view, 3> names{keys.version(), keys.value(), keys.loading()};
        char version_text[24];
        char ttl_text[24];
        const auto version_end =
            local ? std::to_chars(version_text, version_text + 24, local->version).ptr
                  : version_text;
        const auto ttl_end = std::to_chars(ttl_text, ttl_text + 24, kLoadLockTtl.count()).ptr;
        const std::array<std::string_view, 3> args{
            std::string_view(version_text, static_cast<std::size_t>(version_end - version_text)),
            loading_here ? std::string_view() : std::string_view(owner_),
            std::string_view(ttl_text, static_cast<std::size_t>(ttl_end - ttl_text))};
        const RedisReply reply =
            co_await client_.eval(lookup_script(), std::span<const std::string_view>(names),
                                  std::span<const std::string_view>(args));
        if (reply.is_error()) {
            throw DependencyUnavailable("redis: cache lookup failed: " + reply.text);
        }
        if (reply.type != RedisReply::Type::kArray || reply.elements.size() < 2 ||
            reply.elements[1].type != RedisReply::Type::kInteger) {
            throw DependencyUnavailable("redis: unexpected reply to a cache lookup");
        }
        const std::uint64_t version = parse_version(reply.elements[0]);
        switch (reply.elements[1].integer) {
            case 1:
                if (local && local->version == version) {
                    ++local_hits_;
                    co_return app::CacheLookup<T>{local->value, version};
                }
                break;  // cannot happen (we sent that version); treat as a miss below
            case 2:
                if (reply.elements.size() == 3 &&
                    reply.elements[2].type == RedisReply::Type::kString) {
                    if (auto decoded = decode<T>(reply.elements[2].text)) {
                        auto value = std::make_shared<const T>(std::move(*decoded));
                        local_store<T>(id, version, value);
                        ++redis_hits_;
                        co_return app::CacheLookup<T>{std::move(value), version};
                    }
                }
                break;  // not our format: a miss; the loader's put overwrites it
            case 3:
                become_loader(loader, Clock::now() + kLoadWaitMax);
                ++misses_;
                co_return app::CacheLookup<T>{nullptr, version};
            default: {  // another loader works: wait a little for its value
                const auto now = Clock::now();
                if (now >= deadline) break;
                if (!waited) ++waits_;
                waited = true;
                if (loading_here) {
                    co_await wait_for_loader(loader, deadline);
                } else {
                    co_await sleep_until(std::min(deadline, now + kLoadPollInterval));
                }
                continue;
            }
        }
        ++misses_;
        co_return app::CacheLookup<T>{nullptr, version};
    }
}

template <class T>
boost::asio::awaitable<void> RedisCatalogCache::put(Kind kind, std::int64_t id,
                                                    std::shared_ptr<const T> value,
                                                    std::uint64_t generation) {
    const LoaderKey loader{this, static_cast<int>(kind), id};
    if (!value) {
        loader_done(loader);
        co_return;
    }
    const Keys keys = keys_for(kind, id);
    bool stored = false;
    try {
        const RedisReply reply = co_await client_.eval(
            put_script(),
            {std::string(keys.version()), std::string(keys.value()), std::string(keys.loading())},
            {std::to_string(generation), encode(*value),
             std::to_string(std::chrono::milliseconds(kValueTtl).count()), owner_});
        stored = reply.type == RedisReply::Type::kInteger && reply.integer == 1;
        if (reply.is_error()) spdlog::warn("redis: cache put failed: {}", reply.text);
    } catch (const DependencyUnavailable& error) {
        spdlog::debug("redis: cache put skipped: {}", error.what());  // the value is loaded anyway
    }
    if (stored) local_store<T>(id, generation, std::move(value));
    loader_done(loader);  // stored or not, the waiters of this thread look again
}

boost::asio::awaitable<app::CacheLookup<domain::SeatMap>> RedisCatalogCache::seat_map(
    domain::ScheduleId schedule, app::ReadStart since) {
    return lookup<domain::SeatMap>(Kind::kSeatMap, schedule, since);  // no frame of its own
}

boost::asio::awaitable<void> RedisCatalogCache::expect_seat_map(domain::ScheduleId schedule) {
    return expect<domain::SeatMap>(Kind::kSeatMap, schedule);
}

boost::asio::awaitable<void> RedisCatalogCache::put_seat_map(
    domain::ScheduleId schedule, std::shared_ptr<const domain::SeatMap> map,
    std::uint64_t generation) {
    co_await put<domain::SeatMap>(Kind::kSeatMap, schedule, std::move(map), generation);
}

boost::asio::awaitable<app::CacheLookup<app::ScheduleDates>> RedisCatalogCache::schedules(
    domain::ConcertId concert, app::ReadStart since) {
    return lookup<app::ScheduleDates>(Kind::kDates, concert, since);
}

// The dates, and the usage of each date this process has a copy of: the list's checks all ride
// in the token check's call.
boost::asio::awaitable<void> RedisCatalogCache::expect_schedules(domain::ConcertId concert) {
    const auto dates = local_get<app::ScheduleDates>(concert);
    if (!dates) co_return;
    std::vector<Keys> keys;
    keys.reserve(1 + dates->value->size());  // no move after this: the views below point into them
    keys.push_back(keys_for(Kind::kDates, concert));
    for (const domain::ScheduleDate& date : *dates->value) {
        // Only a local copy is checked through the barrier, as in expect().
        if (local_get<domain::ScheduleUsage>(date.id)) {
            keys.push_back(keys_for(Kind::kUsage, date.id));
        }
    }
    std::vector<ReadBarrier::VersionKeys> expected;
    expected.reserve(keys.size());
    for (const Keys& key : keys) expected.push_back({key.version(), key.value()});
    co_await barrier_.expect_versions(expected);
}

boost::asio::awaitable<void> RedisCatalogCache::put_schedules(
    domain::ConcertId concert, std::shared_ptr<const app::ScheduleDates> dates,
    std::uint64_t generation) {
    co_await put<app::ScheduleDates>(Kind::kDates, concert, std::move(dates), generation);
}

boost::asio::awaitable<std::vector<app::CacheLookup<domain::ScheduleUsage>>>
RedisCatalogCache::usage(std::span<const domain::ScheduleId> schedules, app::ReadStart since) {
    using Usage = domain::ScheduleUsage;
    std::vector<app::CacheLookup<Usage>> found(schedules.size());
    std::vector<Keys> keys;
    keys.reserve(schedules.size());  // no move after this: the views below point into them
    std::vector<std::optional<LocalEntry<Usage>>> locals;
    locals.reserve(schedules.size());
    std::vector<ReadBarrier::VersionKeys> asked;
    std::vector<std::size_t> asked_for;
    for (std::size_t i = 0; i < schedules.size(); ++i) {
        keys.push_back(keys_for(Kind::kUsage, schedules[i]));
        locals.push_back(local_get<Usage>(schedules[i]));
        if (locals.back()) {
            asked.push_back({keys.back().version(), keys.back().value()});
            asked_for.push_back(i);
        }
    }
    // The local copies, as in lookup(), all confirmed by one barrier call.
    if (!asked.empty()) {
        const std::vector<VersionCheck> current = co_await barrier_.check_versions(asked, since);
        for (std::size_t j = 0; j < asked_for.size(); ++j) {
            const std::size_t i = asked_for[j];
            if (!current[j].value_exists || !current[j].version) continue;
            auto& local = locals[i];
            if (local->version != *current[j].version) local = local_get<Usage>(schedules[i]);
            if (local && local->version == *current[j].version) {
                ++local_hits_;
                found[i] = {std::move(local->value), local->version};
            }
        }
    }
    // The others in one script: the value Redis holds, or a miss at the current version.
    std::vector<std::string_view> names;
    std::vector<std::size_t> remote;
    for (std::size_t i = 0; i < schedules.size(); ++i) {
        if (found[i].value) continue;
        names.push_back(keys[i].version());
        names.push_back(keys[i].value());
        remote.push_back(i);
    }
    if (remote.empty()) co_return found;
    const RedisReply reply = co_await client_.eval(
        lookup_many_script(), std::span<const std::string_view>(names),
        std::span<const std::string_view>());
    if (reply.is_error()) throw DependencyUnavailable("redis: cache lookup failed: " + reply.text);
    if (reply.type != RedisReply::Type::kArray || reply.elements.size() != 2 * remote.size()) {
        throw DependencyUnavailable("redis: unexpected reply to a cache lookup");
    }
    for (std::size_t j = 0; j < remote.size(); ++j) {
        const std::size_t i = remote[j];
        const std::uint64_t version = parse_version(reply.elements[2 * j]);
        const RedisReply& text = reply.elements[2 * j + 1];
        std::optional<Usage> decoded;
        if (text.type == RedisReply::Type::kString && !text.text.empty()) decoded = decode<Usage>(text.text);
        if (!decoded) {  // none, or not our format: a miss; the loader's put overwrites it
            ++misses_;
            found[i] = {nullptr, version};
            continue;
        }
        auto value = std::make_shared<const Usage>(std::move(*decoded));
        local_store<Usage>(schedules[i], version, value);
        ++redis_hits_;
        found[i] = {std::move(value), version};
    }
    co_return found;
}

boost::asio::awaitable<void> RedisCatalogCache::put_usage(std::span<const app::UsagePut> puts) {
    if (puts.empty()) co_return;
    std::vector<Keys> keys;
    keys.reserve(puts.size());  // no move after this: the views below point into them
    std::vector<std::string> texts;  // generations and values, owned for the call
    texts.reserve(2 * puts.size() + 1);
    texts.push_back(std::to_string(std::chrono::milliseconds(kValueTtl).count()));
    std::vector<std::string_view> names;
    for (const app::UsagePut& put : puts) {
        keys.push_back(keys_for(Kind::kUsage, put.schedule));
        names.push_back(keys.back().version());
        names.push_back(keys.back().value());
        texts.push_back(std::to_string(put.generation));
        texts.push_back(encode(*put.usage));
    }
    const std::vector<std::string_view> args(texts.begin(), texts.end());
    try {
        const RedisReply reply = co_await client_.eval(
            put_many_script(), std::span<const std::string_view>(names),
            std::span<const std::string_view>(args));
        if (reply.is_error()) spdlog::warn("redis: cache put failed: {}", reply.text);
        if (reply.type != RedisReply::Type::kArray || reply.elements.size() != puts.size()) co_return;
        for (std::size_t i = 0; i < puts.size(); ++i) {
            const RedisReply& stored = reply.elements[i];
            if (stored.type == RedisReply::Type::kInteger && stored.integer == 1) {
                local_store<domain::ScheduleUsage>(puts[i].schedule, puts[i].generation, puts[i].usage);
            }
        }
    } catch (const DependencyUnavailable& error) {
        spdlog::debug("redis: cache put skipped: {}", error.what());  // the value is loaded anyway
    }
}

boost::asio::awaitable<void> RedisCatalogCache::invalidate(domain::ScheduleId schedule) {
    const Keys seat_map = keys_for(Kind::kSeatMap, schedule);
    const Keys usage = keys_for(Kind::kUsage, schedule);
    for (int attempt = 0;; ++attempt) {
        try {
            const RedisReply reply = co_await client_.eval(
                invalidate_script(),
                {std::string(seat_map.version()), std::string(seat_map.value()),
                 std::string(usage.version()), std::string(usage.value())},
                {});
            if (reply.is_error()) {
                throw DependencyUnavailable("redis: cache invalidation failed: " + reply.text);
            }
            break;
        } catch (const DependencyUnavailable&) {
            // A reset connection is reopened by the next call: one more try, then 503.
            if (attempt > 0) throw;
        }
    }
    local_erase<domain::SeatMap>(schedule);
    local_erase<domain::ScheduleUsage>(schedule);
}

RedisCatalogCache::Counters RedisCatalogCache::counters() const {
    return {local_hits_.load(std::memory_order_relaxed),
            redis_hits_.load(std::memory_order_relaxed), misses_.load(std::memory_order_relaxed),
            waits_.load(std::memory_order_relaxed)};
}

}  // namespace concertd::redis
