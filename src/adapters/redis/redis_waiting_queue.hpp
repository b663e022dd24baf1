// The waiting queue in Redis 7 (SPEC §2 "Queue token", §4 distributed mode): the in-process
// queue's guarantees across any number of concertd processes on one Redis. Every time is Redis's
// (TIME inside the scripts), so processes with skewed clocks still agree.
//
// Keys (prefix P, default "concertd:queue:"), chosen for memory (SPEC §5: a million waiting
// users ≤ 200 MB; measured 107 B per waiting user, docs/redis.md):
//   P line    ZSET   member = user id (decimal), score = seq: the line in issue order
//   P poll    STRING BITFIELD of u32, slot seq mod kPollSlots = last poll, Redis ms mod 2^32
//   P seq     STRING the last seq issued (INCR)
//   P active  ZSET   member = user id, score = expiry (Redis ms)
//   P aseq    HASH   user id -> seq of the ACTIVE token
//   P secret  STRING the HMAC key, created once by whichever process comes first (SET NX)
//   P adm     HASH   the admission bucket (b, t) and the sweep cursor (c, s)
// A token is not stored at all: it is user id, seq and HMAC-SHA1(secret, user ‖ seq) truncated to
// 128 bits, as 64 lowercase hex digits. The MAC makes it unguessable and binds it to its user;
// the seq binds it to one stay in the line (a user's later token has a larger seq).
// Run this Redis with maxmemory-policy noeviction or volatile-*: these keys have no TTL and the
// queue is lost if they are evicted.
//
// Guarantees:
// - A user has at most one live token; issue() for a user with one returns it again.
// - Positions are FIFO ranks (ZRANK + 1, O(log N)) by seq, which one INCR hands out, so FIFO
//   holds across processes. A waiting token that stopped polling still counts ahead of others
//   until the sweep reaches it (admit() sweeps kSweepBatch line entries per kSweepStep of Redis
//   time, whichever process ticks: a line of a million is swept in about 50 s); it is never
//   found, admitted nor returned once its waiting_ttl has passed.
// - find() never returns a dropped (not polled within waiting_ttl) or expired token, even before
//   admit() has removed it. A waiting token behind which more than kPollSlots tokens have been
//   issued drops out (its poll slot is reused).
// - Admission is one script: at most admit_per_second per second over all processes (one token
//   bucket in Redis, capacity admit_per_second, refilled by elapsed Redis time) and never more
//   than max_active ACTIVE tokens after it, whoever calls it and how often.
// - Every process must use the same settings (they travel with each script call).
// - Thread-safe; each call runs on the calling io_context's Redis connection. Infrastructure
//   failures throw domain::DependencyUnavailable.
// - find() of an ACTIVE token makes no Redis call of its own: it is answered by the thread's
//   read barrier (read_barrier.hpp), a call shared with the other reads of the thread and sent
//   after this one started, so it is exactly as fresh (a token expired by a payment that was
//   answered before the find started is refused, in any process).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "adapters/redis/read_barrier.hpp"
#include "adapters/redis/redis_client.hpp"
#include "app/ports/waiting_queue.hpp"

namespace concertd::redis {

class RedisWaitingQueue final : public app::WaitingQueue {
public:
    inline static const std::string kDefaultKeyPrefix = "concertd:queue:";
    // Poll-time slots (4 bytes each: the bitfield never exceeds 16 MiB).
    static constexpr std::int64_t kPollSlots = std::int64_t{1} << 22;
    // Line entries the sweep examines per step, and the Redis time between steps.
    static constexpr std::int64_t kSweepBatch = 2000;
    static constexpr std::chrono::milliseconds kSweepStep{100};
    // Stale tokens admit() may drop at the head per call; expired ACTIVE tokens it removes.
    static constexpr std::int64_t kMaxHeadDropsPerAdmit = 10'000;
    static constexpr std::int64_t kMaxActiveExpiriesPerAdmit = 10'000;
    static constexpr std::size_t kTokenLength = 64;

    // Throws std::invalid_argument unless every setting is ≥ 1. `client` must outlive the queue,
    // `barrier` too (shared with the cache, so a read's two checks share calls); null: a barrier
    // of the queue's own.
    RedisWaitingQueue(RedisClient& client, app::QueueSettings settings,
                      std::string key_prefix = kDefaultKeyPrefix, ReadBarrier* barrier = nullptr);
    RedisWaitingQueue(const RedisWaitingQueue&) = delete;
    RedisWaitingQueue& operator=(const RedisWaitingQueue&) = delete;

    // The user's live token (WAITING and polled within waiting_ttl, or ACTIVE and not past
    // active_ttl) with created=false, else a new WAITING token at the end with created=true.
    // Re-issuing counts as a poll. One round trip (plus one the first time, for the secret).
    boost::asio::awaitable<app::IssuedTicket> issue(domain::UserId user) override;
    // WAITING: position (1-based) and ceil(position / admit_per_second) seconds, and the look
    // counts as a poll. ACTIVE: position 0, wait 0. nullopt when malformed or forged (no round
    // trip: the MAC is checked here), unknown, dropped or expired. ACTIVE or expired: a share of
    // a barrier call; otherwise (WAITING, unknown) one more round trip, today's full look.
    boost::asio::awaitable<std::optional<domain::QueueTicket>> find(std::string token) override;
    // Ends the user's token in whatever state; a no-op when there is none. One round trip.
    boost::asio::awaitable<void> expire_user(domain::UserId user) override;
    // One script, one round trip: removes up to kMaxActiveExpiriesPerAdmit expired ACTIVE
    // tokens, refills the bucket, admits from the head while the bucket and max_active allow
    // (dropping up to kMaxHeadDropsPerAdmit stale tokens it meets, at no cost), and advances the
    // sweep. Returns how many were admitted. `now` is ignored: Redis's clock decides. Safe from
    // any number of processes and threads at once; meant for one ticker per process (~10 Hz).
    boost::asio::awaitable<std::int64_t> admit(domain::TimePoint now) override;
    // Line length and ACTIVE tokens (ZCARD of each, one round trip); tokens that dropped out or
    // expired but were not removed yet still count.
    boost::asio::awaitable<app::QueueStats> stats() override;

private:
    // The HMAC key as Redis holds it, cached; reloaded when a script says it changed (Redis lost
    // its data: the tokens of the old key are worthless then, their line is gone too).
    boost::asio::awaitable<std::shared_ptr<const std::string>> secret();
    boost::asio::awaitable<std::shared_ptr<const std::string>> reload_secret();
    // The cached key, or null; no coroutine frame (find calls it on every read).
    std::shared_ptr<const std::string> cached_secret();

    domain::QueueTicket active_ticket(std::string token, domain::UserId user) const;
    domain::QueueTicket waiting_ticket(std::string token, domain::UserId user,
                                       std::int64_t position) const;

    RedisClient& client_;
    const app::QueueSettings settings_;
    const std::string prefix_;
    const std::vector<std::string> keys_;  // the seven keys every script gets, in order
    // Shared with the barrier's batches, which may be sent after a cancelled read returned.
    const std::shared_ptr<const TokenKeys> token_keys_;
    std::unique_ptr<ReadBarrier> own_barrier_;
    ReadBarrier& barrier_;

    std::mutex secret_mutex_;  // guards secret_; never held across a co_await
    std::shared_ptr<const std::string> secret_;
};

}  // namespace concertd::redis
