#include "adapters/redis/redis_lock.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>
#include <random>
#include <stdexcept>
#include <utility>

#include "domain/outcome.hpp"

namespace concertd::redis {

namespace asio = boost::asio;

namespace {

using domain::DependencyUnavailable;
constexpr asio::as_tuple_t<asio::use_awaitable_t<>> kUseTuple{};

// KEYS[1] lock, KEYS[2] fence; ARGV[1] owner, [2] lease ms, [3] fence keep ms. The fence as a
// decimal string, or nil when the key is held. The fence is floored at Redis's clock in µs, so
// it keeps growing after the counter expired or Redis lost its data.
const RedisScript& acquire_script() {
    static const RedisScript script(R"lua(
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
local clock = redis.call('TIME')
local floor = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local fence = tonumber(redis.call('GET', KEYS[2]) or '0') + 1
if fence < floor then fence = floor end
fence = string.format('%.0f', fence)
redis.call('SET', KEYS[2], fence, 'PX', ARGV[3])
return fence
)lua");
    return script;
}

// KEYS[1] lock; ARGV[1] owner, ARGV[2] lease ms. 1 when renewed, 0 when the owner lost it.
const RedisScript& renew_script() {
    static const RedisScript script(R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
)lua");
    return script;
}

// KEYS[1] lock; ARGV[1] owner. 1 when deleted, 0 when someone else holds it (or nobody).
const RedisScript& release_script() {
    static const RedisScript script(R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
)lua");
    return script;
}

// Owners need to be unique, not secret: 128 bits from std::random_device.
std::string random_owner() {
    static constexpr char kHex[] = "0123456789abcdef";
    thread_local std::random_device device;
    std::string owner;
    owner.reserve(32);
    for (int word = 0; word < 4; ++word) {
        std::uint32_t bits = device();
        for (int i = 0; i < 8; ++i, bits >>= 4) owner += kHex[bits & 0xF];
    }
    return owner;
}

// Full jitter over the upper half: waiters that collided do not retry in step.
std::chrono::microseconds jittered(std::chrono::milliseconds backoff) {
    thread_local std::minstd_rand engine{std::random_device{}()};
    const auto high = std::chrono::duration_cast<std::chrono::microseconds>(backoff).count();
    std::uniform_int_distribution<std::int64_t> pick(high / 2, high);
    return std::chrono::microseconds(pick(engine));
}

}  // namespace

// The renewal of one granted lease; shared by its renewer coroutine and release().
struct RedisLock::Renewal {
    Renewal(asio::any_io_executor on, std::string key, std::string holder)
        : executor(std::move(on)), redis_key(std::move(key)), owner(std::move(holder)) {}

    const asio::any_io_executor executor;  // the acquiring io_context's
    const std::string redis_key;
    const std::string owner;

    std::mutex mutex;  // guards timer and stopped: stop() may come from any thread
    asio::steady_timer* timer = nullptr;  // the renewer's, while it sleeps
    bool stopped = false;
};

// A waiter of this process that a local release may wake.
struct RedisLock::LocalWaiter {
    explicit LocalWaiter(asio::any_io_executor on) : executor(std::move(on)) {}

    const asio::any_io_executor executor;
    bool queued = false;  // in waiters_; under RedisLock::mutex_
    std::list<std::shared_ptr<LocalWaiter>>::iterator position;  // valid while queued

    std::mutex mutex;  // guards timer and woken: the wake is posted from the releasing thread
    asio::steady_timer* timer = nullptr;
    bool woken = false;
};

// Lives in the waiting coroutine's frame around one sleep: queues the waiter, and takes it off
// the line (and away from its timer) however the sleep ends, also if the frame is destroyed.
class RedisLock::LocalWaitGuard {
public:
    LocalWaitGuard(RedisLock& lock, const std::string& key, asio::steady_timer& timer)
        : lock_(lock), key_(key), waiter_(std::make_shared<LocalWaiter>(timer.get_executor())) {
        waiter_->timer = &timer;  // no wake can run before this coroutine suspends
        std::lock_guard guard(lock_.mutex_);
        auto& line = lock_.waiters_[key_];
        if (line.size() < kMaxLocalWaitersPerKey) {  // past that, this waiter only polls
            line.push_back(waiter_);
            waiter_->position = std::prev(line.end());
            waiter_->queued = true;
        }
    }
    LocalWaitGuard(const LocalWaitGuard&) = delete;
    LocalWaitGuard& operator=(const LocalWaitGuard&) = delete;
    ~LocalWaitGuard() {
        {
            std::lock_guard guard(waiter_->mutex);
            waiter_->timer = nullptr;
        }
        std::lock_guard guard(lock_.mutex_);
        if (!waiter_->queued) return;
        const auto it = lock_.waiters_.find(key_);
        it->second.erase(waiter_->position);
        if (it->second.empty()) lock_.waiters_.erase(it);
    }

    bool woken() const {
        std::lock_guard guard(waiter_->mutex);
        return waiter_->woken;
    }

private:
    RedisLock& lock_;
    const std::string& key_;
    std::shared_ptr<LocalWaiter> waiter_;
};

RedisLock::RedisLock(RedisClient& client, std::chrono::milliseconds lease, std::string key_prefix)
    : client_(client),
      lease_(lease),
      prefix_(std::move(key_prefix)),
      abandoned_(client, release_script()) {
    if (lease_ < kLeaseMin) {
        throw std::invalid_argument("redis lock: lease must be at least " +
                                    std::to_string(kLeaseMin.count()) + " ms");
    }
}

RedisLock::~RedisLock() {
    std::lock_guard guard(mutex_);
    for (auto& [owner, renewal] : held_) stop(renewal);
}

boost::asio::awaitable<std::optional<app::LockLease>> RedisLock::acquire(
    std::string key, std::chrono::milliseconds wait) {
    const std::string owner = random_owner();
    const auto executor = co_await asio::this_coro::executor;
    const auto deadline = std::chrono::steady_clock::now() + wait;
    std::chrono::milliseconds backoff = kBackoffFirst;
    for (;;) {
        // Held or being tried by this process: Redis would say no, or is being asked already;
        // wait for this process's release (which wakes one waiter) or the next backoff.
        if (auto claim = claims_.claim(key)) {
            std::optional<std::uint64_t> fence;
            try {
                fence = co_await try_acquire(key, owner);
            } catch (...) {
                // No answer: the SET may still run in Redis later, for an owner nobody releases.
                abandoned_.add(executor, lock_key(key), owner);
                throw;
            }
            if (fence) {
                claim->keep();  // until release()
                auto renewal = std::make_shared<Renewal>(executor, lock_key(key), owner);
                {
                    std::lock_guard guard(mutex_);
                    held_[owner] = renewal;
                }
                // On this io_context: the renewer never changes thread either.
                asio::co_spawn(executor, renew(client_, std::move(renewal), lease_),
                               asio::detached);
                co_return app::LockLease{std::move(key), owner, *fence};
            }
        }
        const auto now = std::chrono::steady_clock::now();
        if (now >= deadline) co_return std::nullopt;
        const auto sleep = std::min<std::chrono::steady_clock::duration>(jittered(backoff),
                                                                         deadline - now);
        backoff = std::min(backoff * 2, kBackoffMax);
        asio::steady_timer timer(executor, sleep);
        LocalWaitGuard guard(*this, key, timer);
        co_await timer.async_wait(kUseTuple);  // expiry, or a cancel from a local release
        if (guard.woken()) backoff = kBackoffFirst;
    }
}

boost::asio::awaitable<std::optional<std::uint64_t>> RedisLock::try_acquire(
    const std::string& key, const std::string& owner) {
    tries_.fetch_add(1, std::memory_order_relaxed);
    const RedisReply reply = co_await client_.eval(
        acquire_script(), {lock_key(key), fence_key(key)},
        {owner, std::to_string(lease_.count()),
         std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(kFenceKeep)
                            .count())});
    if (reply.is_nil()) co_return std::nullopt;
    std::uint64_t fence = 0;
    if (reply.type == RedisReply::Type::kString) {
        const char* end = reply.text.data() + reply.text.size();
        const auto [ptr, ec] = std::from_chars(reply.text.data(), end, fence);
        if (ec == std::errc() && ptr == end && fence > 0) co_return fence;
    }
    throw DependencyUnavailable("redis: lock script failed: " +
                                (reply.is_error() ? reply.text : std::string("bad reply")));
}

boost::asio::awaitable<void> RedisLock::renew(RedisClient& client,
                                              std::shared_ptr<Renewal> renewal,
                                              std::chrono::milliseconds lease) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    // However this frame ends (also destroyed with its io_context), stop() must not touch the
    // timer any more.
    struct Detach {
        Renewal& renewal;
        ~Detach() {
            std::lock_guard guard(renewal.mutex);
            renewal.timer = nullptr;
        }
    } detach{*renewal};
    const std::string lease_ms = std::to_string(lease.count());
    for (;;) {
        bool stopped = false;
        {
            std::lock_guard guard(renewal->mutex);
            stopped = renewal->stopped;
            if (!stopped) renewal->timer = &timer;
        }
        if (stopped) co_return;
        timer.expires_after(lease / 3);
        co_await timer.async_wait(kUseTuple);
        {
            std::lock_guard guard(renewal->mutex);
            renewal->timer = nullptr;
            stopped = renewal->stopped;
        }
        if (stopped) co_return;
        try {
            const RedisReply reply =
                co_await client.eval(renew_script(), {renewal->redis_key},
                                     {renewal->owner, lease_ms});
            if (reply.type == RedisReply::Type::kInteger && reply.integer == 0) {
                // Expired (and maybe granted again): renewing would take it from the new holder.
                spdlog::warn("redis lock: lease on {} lost before release", renewal->redis_key);
                co_return;
            }
        } catch (const std::exception& error) {
            // Try again next period; if Redis stays away the lease runs out (fencing covers it).
            spdlog::warn("redis lock: renewing {} failed: {}", renewal->redis_key, error.what());
        }
    }
}

void RedisLock::stop(const std::shared_ptr<Renewal>& renewal) {
    {
        std::lock_guard guard(renewal->mutex);
        renewal->stopped = true;
        if (renewal->timer == nullptr) return;  // running a renewal, or gone: it sees `stopped`
    }
    // Timers are not thread-safe: cancel on the renewer's own io_context.
    asio::post(renewal->executor, [renewal] {
        std::lock_guard guard(renewal->mutex);
        if (renewal->timer != nullptr) renewal->timer->cancel();
    });
}

boost::asio::awaitable<void> RedisLock::release(app::LockLease lease) {
    const auto executor = co_await asio::this_coro::executor;
    const std::string redis_key = lock_key(lease.key);
    std::shared_ptr<Renewal> renewal;
    {
        std::lock_guard guard(mutex_);
        const auto it = held_.find(lease.owner);
        if (it != held_.end() && it->second->redis_key == redis_key) {
            renewal = std::move(it->second);
            held_.erase(it);
        }
    }
    // The key stays claimed here until Redis has deleted it: a local waiter asks only then.
    std::optional<adapters::LocalClaims::Claim> claim;
    if (renewal) {
        stop(renewal);
        claim.emplace(claims_, lease.key);
    }
    bool deleted = false;
    try {
        const RedisReply reply =
            co_await client_.eval(release_script(), {redis_key}, {lease.owner});
        deleted = reply.type == RedisReply::Type::kInteger && reply.integer == 1;
        if (reply.is_error()) {
            spdlog::warn("redis lock: release of {} failed: {}", redis_key, reply.text);
        }
    } catch (const std::exception& error) {
        // Retried once Redis answers again; else the lease runs out by itself (not renewed).
        spdlog::warn("redis lock: release of {} failed: {}", redis_key, error.what());
        abandoned_.add(executor, redis_key, lease.owner);
    }
    claim.reset();  // before the wake: the woken waiter must find the key free here
    if (deleted || renewal) wake_one(lease.key);
}

void RedisLock::wake_one(const std::string& key) {
    std::shared_ptr<LocalWaiter> next;
    {
        std::lock_guard guard(mutex_);
        const auto it = waiters_.find(key);
        if (it == waiters_.end()) return;
        next = std::move(it->second.front());
        it->second.pop_front();
        next->queued = false;
        if (it->second.empty()) waiters_.erase(it);
    }
    asio::post(next->executor, [next] {
        std::lock_guard guard(next->mutex);
        next->woken = true;
        if (next->timer != nullptr) next->timer->cancel();
    });
}

std::size_t RedisLock::held_count() const {
    std::lock_guard guard(mutex_);
    return held_.size();
}

bool RedisLock::stop_renewal_for_test(const app::LockLease& lease) {
    std::shared_ptr<Renewal> renewal;
    {
        std::lock_guard guard(mutex_);
        const auto it = held_.find(lease.owner);
        if (it == held_.end()) return false;
        renewal = it->second;
    }
    stop(renewal);
    return true;
}

}  // namespace concertd::redis
