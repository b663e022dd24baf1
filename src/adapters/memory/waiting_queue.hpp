// The in-process waiting queue (SPEC §2 "Queue token", §4 embedded mode): one FIFO line per
// process, admission by a token bucket, TTLs checked lazily by the clock and swept by admit().
//
// Guarantees:
// - Tokens are 128 random bits from the kernel (32 lowercase hex digits), bound to one user; a
//   user has at most one live token.
// - Positions are exact FIFO ranks among the tokens still in the line, 1-based, O(log N).
//   A token that dropped out but has not been swept yet still counts ahead of the others for at
//   most kSweepInterval (it is dropped at once when it reaches the head).
// - find() never returns a dropped or expired token, even before admit() has run.
// - At most admit_per_second admissions per second (a bucket of one second, refilled by elapsed
//   time) and never more than max_active ACTIVE tokens once admit() has run.
// - Thread-safe: find() and stats() share a reader lock; issue(), expire_user() and admit()
//   take it exclusively, with no O(N) work except the sweep (at most once per kSweepInterval).
// - About 80-90 bytes per waiting user (SPEC §5: a million waiting users ≤ 200 MB).
#pragma once

#include <atomic>
#include <boost/unordered/unordered_flat_set.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "adapters/memory/random_token.hpp"
#include "app/ports/clock.hpp"
#include "app/ports/waiting_queue.hpp"

namespace concertd::memory {

namespace detail {

// Counts of 0/1 per line position with prefix sums (a Fenwick tree): O(log N) update, rank and
// append; 4 bytes per position.
class LineCounter {
public:
    std::size_t size() const { return tree_.size(); }
    // Appends a position holding `value`.
    void push_back(std::uint32_t value);
    void add(std::size_t index, std::int32_t delta);
    // Sum over positions [0, index].
    std::uint64_t prefix(std::size_t index) const;
    // n positions, each holding 1 (after a compaction), in O(n).
    void assign_ones(std::size_t n);
    void shrink_to_fit() { tree_.shrink_to_fit(); }

private:
    std::vector<std::uint32_t> tree_;  // tree_[i - 1] is Fenwick node i
};

}  // namespace detail

class MemoryWaitingQueue final : public app::WaitingQueue {
public:
    // How often admit() sweeps the whole line for tokens that stopped polling (an O(N) pass).
    static constexpr std::chrono::milliseconds kSweepInterval{1000};
    // Stale tokens admit() may drop at the head per call; the sweep takes the rest.
    static constexpr std::int64_t kMaxHeadDropsPerAdmit = 10'000;

    // Throws std::invalid_argument unless every setting is ≥ 1. `clock` must outlive the queue.
    MemoryWaitingQueue(app::QueueSettings settings, const app::ClockPort& clock);
    MemoryWaitingQueue(const MemoryWaitingQueue&) = delete;
    MemoryWaitingQueue& operator=(const MemoryWaitingQueue&) = delete;

    // The user's live token (WAITING and polled within waiting_ttl, or ACTIVE and not past
    // active_ttl) with created=false, else a new WAITING token at the end with created=true.
    // Re-issuing counts as a poll.
    boost::asio::awaitable<app::IssuedTicket> issue(domain::UserId user) override;
    // WAITING: position (1-based) and ceil(position / admit_per_second) seconds, and the look
    // counts as a poll. ACTIVE: position 0, wait 0. nullopt when malformed, unknown, dropped or
    // expired (checked against the clock, not only by admit()).
    boost::asio::awaitable<std::optional<domain::QueueTicket>> find(std::string token) override;
    // Ends the user's token in whatever state; a no-op when there is none.
    boost::asio::awaitable<void> expire_user(domain::UserId user) override;
    // Expires ACTIVE tokens past active_ttl, then admits from the head while the bucket and
    // max_active allow, dropping stale WAITING tokens it meets; sweeps the line at most once per
    // kSweepInterval. Returns how many were admitted. Meant for one ticker (~10 Hz).
    boost::asio::awaitable<std::int64_t> admit(domain::TimePoint now) override;
    // Tokens in the line and ACTIVE tokens, as of the last admit() (lazily expired ones count).
    boost::asio::awaitable<app::QueueStats> stats() override;

private:
    enum class EntryState : std::uint8_t { kFree, kWaiting, kActive };

    // One token. Slots are reused through a free list; `generation` changes on every reuse so
    // that references held in active_order_ can tell they are stale.
    struct Entry {
        TokenBits token;
        domain::UserId user = 0;
        // WAITING: last poll, ms since epoch. Atomic so find() refreshes it under the shared lock.
        mutable std::atomic<std::int64_t> last_poll_ms{0};
        std::int64_t active_until_ms = 0;  // ACTIVE: expiry, ms since epoch
        std::uint32_t line_index = 0;      // WAITING: index in line_
        std::uint32_t generation = 0;
        EntryState state = EntryState::kFree;
    };

    // The token and user indexes hold 4-byte slot numbers and hash the entry's field, instead of
    // copying the key beside the slot: 8 bytes per user rather than 40 at a million users.
    struct SlotByToken {
        using is_transparent = void;
        const std::deque<Entry>* slots;
        std::size_t operator()(std::uint32_t slot) const noexcept {
            return TokenBitsHash{}((*slots)[slot].token);
        }
        std::size_t operator()(const TokenBits& token) const noexcept {
            return TokenBitsHash{}(token);
        }
        bool operator()(std::uint32_t a, std::uint32_t b) const noexcept { return a == b; }
        bool operator()(const TokenBits& token, std::uint32_t slot) const noexcept {
            return (*slots)[slot].token == token;
        }
        bool operator()(std::uint32_t slot, const TokenBits& token) const noexcept {
            return (*slots)[slot].token == token;
        }
    };
    struct UserKey {  // a distinct type, so a user id is never mistaken for a slot number
        domain::UserId user;
    };
    struct SlotByUser {
        using is_transparent = void;
        const std::deque<Entry>* slots;
        std::size_t operator()(std::uint32_t slot) const noexcept {
            return std::hash<domain::UserId>{}((*slots)[slot].user);
        }
        std::size_t operator()(UserKey key) const noexcept {
            return std::hash<domain::UserId>{}(key.user);
        }
        bool operator()(std::uint32_t a, std::uint32_t b) const noexcept { return a == b; }
        bool operator()(UserKey key, std::uint32_t slot) const noexcept {
            return (*slots)[slot].user == key.user;
        }
        bool operator()(std::uint32_t slot, UserKey key) const noexcept {
            return (*slots)[slot].user == key.user;
        }
    };

    struct ActiveRef {
        std::uint32_t slot = 0;
        std::uint32_t generation = 0;
    };

    static constexpr std::uint32_t kNoSlot = UINT32_MAX;
    static constexpr std::int64_t kMilliTokensPerAdmission = 1000;

    app::IssuedTicket issue_locked(domain::UserId user, TokenBits fresh, std::int64_t now_ms);
    std::optional<domain::QueueTicket> find_shared(std::string token, std::int64_t now_ms) const;
    std::int64_t admit_locked(std::int64_t now_ms);

    bool is_live(const Entry& entry, std::int64_t now_ms) const;
    bool is_stale_waiting(const Entry& entry, std::int64_t now_ms) const;
    domain::QueueTicket ticket_of(const Entry& entry, std::string token) const;
    // Takes the entry out of the line or the active count, then frees it.
    void remove_entry(std::uint32_t slot);
    // Forgets the token and user and returns the slot to the free list.
    void free_entry(std::uint32_t slot);
    void expire_active(std::int64_t now_ms);
    void refill(std::int64_t now_ms);
    // Drops every stale WAITING token and compacts the line. O(N).
    void sweep(std::int64_t now_ms);

    const app::QueueSettings settings_;
    const std::int64_t waiting_ttl_ms_;
    const std::int64_t active_ttl_ms_;
    const app::ClockPort& clock_;

    mutable std::shared_mutex mutex_;
    std::deque<Entry> slots_;  // a deque: entries never move, and it grows without copying
    std::vector<std::uint32_t> free_slots_;
    // Slots of live entries. An entry's token and user must not change while it is indexed.
    boost::unordered_flat_set<std::uint32_t, SlotByToken, SlotByToken> by_token_;
    boost::unordered_flat_set<std::uint32_t, SlotByUser, SlotByUser> by_user_;

    // The line: slots in issue order, kNoSlot where a token has left. Ranks come from line_live_.
    std::vector<std::uint32_t> line_;
    detail::LineCounter line_live_;
    std::size_t line_head_ = 0;  // every index before it has left the line
    std::int64_t waiting_count_ = 0;

    // ACTIVE tokens in admission order, which is expiry order (active_ttl is fixed).
    std::deque<ActiveRef> active_order_;
    std::int64_t active_count_ = 0;

    std::int64_t budget_milli_ = 0;  // the bucket, in thousandths of an admission
    std::optional<std::int64_t> last_refill_ms_;
    std::optional<std::int64_t> last_sweep_ms_;
};

}  // namespace concertd::memory
