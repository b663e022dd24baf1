#include "adapters/mysql/mysql_advisory_lock.hpp"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string_view>
#include <utility>

#include "adapters/memory/random_token.hpp"
#include "adapters/mysql/mysql_named_lock.hpp"
#include "domain/outcome.hpp"

namespace concertd::mysql {

namespace {

namespace asio = boost::asio;
using detail::param;

// 1: granted; 0: another session holds it; NULL: an error (treated as busy).
constexpr std::string_view kTryLock = "SELECT GET_LOCK(?, 0)";

// Its own autocommit statement, so the row lock on lock_fence lasts this statement only. The
// OK packet's insert id carries LAST_INSERT_ID(expr): no SELECT LAST_INSERT_ID() round trip.
constexpr std::string_view kNextFence =
    "UPDATE lock_fence SET value = LAST_INSERT_ID(GREATEST(value + 1,"
    " CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED))) WHERE id = 1";

// Uniform in [pause / 2, pause]: waiters that started together spread out.
std::chrono::microseconds jittered(std::chrono::milliseconds pause) {
    thread_local std::minstd_rand random{
        static_cast<std::minstd_rand::result_type>(memory::random_token_bits().lo)};
    const auto full = std::chrono::duration_cast<std::chrono::microseconds>(pause).count();
    const auto half = full / 2;
    const auto spread = static_cast<std::int64_t>(random()) % (full - half + 1);
    return std::chrono::microseconds(half + spread);
}

}  // namespace

MysqlAdvisoryLock::~MysqlAdvisoryLock() {
    // Leases nobody released: their connections must not go back to the pool with the lock.
    std::lock_guard lock(mutex_);
    for (auto& [owner, held] : held_) held.connection->discard();
}

asio::awaitable<std::optional<app::LockLease>> MysqlAdvisoryLock::acquire(
    std::string key, std::chrono::milliseconds wait) {
    const auto deadline =
        std::chrono::steady_clock::now() + std::max(wait, std::chrono::milliseconds(0));
    auto backoff = kBackoffFirst;
    for (;;) {
        // Held or being tried by this process: the server would say no, or is being asked
        // already; ask again once that is over.
        if (auto claim = claims_.claim(key)) {
            auto lease = co_await try_once(key);
            if (lease) {
                claim->keep();  // until release()
                co_return lease;
            }
        }
        const auto now = std::chrono::steady_clock::now();
        if (now >= deadline) co_return std::nullopt;
        const auto pause =
            std::min<std::chrono::steady_clock::duration>(jittered(backoff), deadline - now);
        asio::steady_timer timer(co_await asio::this_coro::executor, pause);
        co_await timer.async_wait(asio::use_awaitable);
        backoff = std::min(backoff * 2, kBackoffMax);
    }
}

asio::awaitable<std::optional<app::LockLease>> MysqlAdvisoryLock::try_once(
    const std::string& key) {
    std::string owner = memory::random_token_hex();
    const std::string name = lock_name(kKeyLock, pool_.options().endpoint.database, key);
    auto executor = co_await asio::this_coro::executor;
    const auto timeout = pool_.options().statement_timeout;
    auto conn = co_await pool_.acquire();
    tries_.fetch_add(1, std::memory_order_relaxed);
    // Armed before the try: a grant whose answer is lost (a timeout, a coroutine destroyed) or a
    // fence that fails must not leave the lock on a pooled session.
    NamedLockGuard guard(conn);
    const auto granted = co_await conn->execute(kTryLock, {param(name)}, timeout);
    if (granted.optional_int64(0, 0).value_or(0) != 1) {
        guard.disarm();  // busy: nothing held, the connection goes back
        co_return std::nullopt;
    }
    const auto fence = co_await conn->execute(kNextFence, {}, timeout);
    if (fence.affected_rows() != 1 || fence.insert_id() <= 0) {
        throw std::runtime_error("lock_fence has no row 1: apply migrations/mysql");
    }
    app::LockLease lease{key, owner, static_cast<std::uint64_t>(fence.insert_id())};
    guard.disarm();  // the connection is kept with the lease from here
    {
        std::lock_guard lock(mutex_);
        held_.emplace(std::move(owner), Held{key, std::move(executor), std::move(conn)});
    }
    co_return lease;
}

asio::awaitable<void> MysqlAdvisoryLock::release(app::LockLease lease) {
    std::optional<Held> held;
    {
        std::lock_guard lock(mutex_);
        const auto it = held_.find(lease.owner);
        if (it == held_.end() || it->second.key != lease.key) co_return;
        auto node = held_.extract(it);
        held.emplace(std::move(node.mapped()));
    }
    const adapters::LocalClaims::Claim claim(claims_, held->key);  // dropped once unlocked
    const auto timeout = pool_.options().statement_timeout;
    const auto current = co_await asio::this_coro::executor;
    if (current == held->executor) {
        co_await unlock(std::move(*held), timeout);
    } else {
        // The connection's socket belongs to the acquiring io_context: unlock there, and resume
        // here when it is done.
        auto executor = held->executor;
        co_await asio::co_spawn(executor, unlock(std::move(*held), timeout), asio::use_awaitable);
    }
}

asio::awaitable<void> MysqlAdvisoryLock::unlock(Held held, std::chrono::milliseconds timeout) {
    bool released = false;
    try {
        co_await held.connection->execute(kReleaseAllLocks, {}, timeout);
        released = true;
    } catch (const std::exception&) {
        // A broken connection (the server ends the session, and its locks with it) or a refusal:
        // either way the connection is closed below rather than reused.
    }
    if (!released) held.connection->discard();
    // `held.connection` goes back to the pool (or is dropped) here.
}

std::size_t MysqlAdvisoryLock::held_count() const {
    std::lock_guard lock(mutex_);
    return held_.size();
}

}  // namespace concertd::mysql
