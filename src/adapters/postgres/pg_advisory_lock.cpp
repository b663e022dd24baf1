#include "adapters/postgres/pg_advisory_lock.hpp"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdint>
#include <random>
#include <string_view>
#include <utility>

#include "adapters/memory/random_token.hpp"
#include "domain/outcome.hpp"

namespace concertd::postgres {

namespace {

namespace asio = boost::asio;
using detail::param;
using detail::PgError;

// CASE evaluates the lock first and takes a fence only when it was granted: NULL means busy.
// The fence is at least the clock in microseconds, as the Redis lock's is, so switching between
// the two locks never makes fences go down (a lower one would be refused as stale).
constexpr std::string_view kTryLock =
    "SELECT CASE WHEN pg_try_advisory_lock(hashtextextended($1, 0))"
    " THEN GREATEST(nextval('lock_fence'),"
    " (extract(epoch FROM clock_timestamp()) * 1000000)::bigint) END";
constexpr std::string_view kUnlock = "SELECT pg_advisory_unlock(hashtextextended($1, 0))";
// The last resort when the unlock itself failed, so the session goes back to the pool clean.
constexpr std::string_view kUnlockAll = "SELECT pg_advisory_unlock_all()";

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

asio::awaitable<std::optional<app::LockLease>> PgAdvisoryLock::acquire(
    std::string key, std::chrono::milliseconds wait) {
    const auto deadline =
        std::chrono::steady_clock::now() + std::max(wait, std::chrono::milliseconds(0));
    auto backoff = kBackoffFirst;
    for (;;) {
        // Held or being tried by this process: the database would say no, or is being asked
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
        const auto pause = std::min<std::chrono::steady_clock::duration>(
            jittered(backoff), deadline - now);
        asio::steady_timer timer(co_await asio::this_coro::executor, pause);
        co_await timer.async_wait(asio::use_awaitable);
        backoff = std::min(backoff * 2, kBackoffMax);
    }
}

asio::awaitable<std::optional<app::LockLease>> PgAdvisoryLock::try_once(const std::string& key) {
    // Made before the try: nothing may throw between a grant and keeping its connection, or the
    // connection would go back to the pool with the lock.
    std::string owner = memory::random_token_hex();
    auto executor = co_await asio::this_coro::executor;
    auto conn = co_await pool_.acquire();
    tries_.fetch_add(1, std::memory_order_relaxed);
    const auto result =
        co_await conn->execute(kTryLock, {param(key)}, pool_.options().statement_timeout);
    if (result.is_null(0, 0)) co_return std::nullopt;  // busy; the connection goes back
    app::LockLease lease{key, owner, static_cast<std::uint64_t>(result.int64(0, 0))};
    {
        std::lock_guard lock(mutex_);
        held_.emplace(std::move(owner), Held{key, std::move(executor), std::move(conn)});
    }
    co_return lease;
}

asio::awaitable<void> PgAdvisoryLock::release(app::LockLease lease) {
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

asio::awaitable<void> PgAdvisoryLock::unlock(Held held, std::chrono::milliseconds timeout) {
    bool failed = false;
    try {
        co_await held.connection->execute(kUnlock, {param(held.key)}, timeout);
    } catch (const domain::DependencyUnavailable&) {
        // The connection broke (and is marked so: the pool drops it). The server ends the
        // session, and its locks with it.
        co_return;
    } catch (const PgError&) {
        failed = true;
    }
    if (failed) {
        try {
            co_await held.connection->execute(kUnlockAll, {}, timeout);
        } catch (const std::exception&) {
            // Nothing more to try; a broken connection is dropped by the pool.
        }
    }
    // `held.connection` goes back to the pool here.
}

std::size_t PgAdvisoryLock::held_count() const {
    std::lock_guard lock(mutex_);
    return held_.size();
}

}  // namespace concertd::postgres
