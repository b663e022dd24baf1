#include "adapters/memory/waiting_queue.hpp"

#include <algorithm>
#include <cassert>
#include <mutex>
#include <stdexcept>
#include <utility>

namespace concertd::memory {

namespace detail {
namespace {

std::size_t low_bit(std::size_t node) { return node & (~node + 1); }

}  // namespace

void LineCounter::push_back(std::uint32_t value) {
    // Node n covers (n - low_bit(n), n]; its children n-1, n-2, n-4 … cover the part before n.
    const std::size_t node = tree_.size() + 1;
    std::uint64_t sum = value;
    for (std::size_t step = 1; step < low_bit(node); step <<= 1) {
        sum += tree_[node - step - 1];
    }
    tree_.push_back(static_cast<std::uint32_t>(sum));
}

void LineCounter::add(std::size_t index, std::int32_t delta) {
    for (std::size_t node = index + 1; node <= tree_.size(); node += low_bit(node)) {
        tree_[node - 1] += static_cast<std::uint32_t>(delta);  // modular: a -1 wraps to a decrement
    }
}

std::uint64_t LineCounter::prefix(std::size_t index) const {
    assert(index < tree_.size());
    std::uint64_t sum = 0;
    for (std::size_t node = index + 1; node > 0; node &= node - 1) {
        sum += tree_[node - 1];
    }
    return sum;
}

void LineCounter::assign_ones(std::size_t n) {
    tree_.resize(n);
    for (std::size_t node = 1; node <= n; ++node) {
        tree_[node - 1] = static_cast<std::uint32_t>(low_bit(node));
    }
}

}  // namespace detail

namespace {

std::int64_t to_ms(domain::TimePoint t) { return t.time_since_epoch().count(); }

void require_positive(std::int64_t value, const char* name) {
    if (value < 1) {
        throw std::invalid_argument(std::string("queue setting must be at least 1: ") + name);
    }
}

}  // namespace

MemoryWaitingQueue::MemoryWaitingQueue(app::QueueSettings settings, const app::ClockPort& clock)
    : settings_(settings),
      waiting_ttl_ms_(settings.waiting_ttl_seconds * 1000),
      active_ttl_ms_(settings.active_ttl_seconds * 1000),
      clock_(clock),
      by_token_(0, SlotByToken{&slots_}, SlotByToken{&slots_}),
      by_user_(0, SlotByUser{&slots_}, SlotByUser{&slots_}) {
    require_positive(settings.admit_per_second, "admit_per_second");
    require_positive(settings.max_active, "max_active");
    require_positive(settings.active_ttl_seconds, "active_ttl_seconds");
    require_positive(settings.waiting_ttl_seconds, "waiting_ttl_seconds");
}

boost::asio::awaitable<app::IssuedTicket> MemoryWaitingQueue::issue(domain::UserId user) {
    // The system call stays outside the lock; the bits are wasted if the user has a live token.
    const TokenBits fresh = random_token_bits();
    const std::int64_t now_ms = to_ms(clock_.now());
    std::unique_lock lock(mutex_);
    app::IssuedTicket issued = issue_locked(user, fresh, now_ms);
    lock.unlock();
    co_return issued;
}

boost::asio::awaitable<std::optional<domain::QueueTicket>> MemoryWaitingQueue::find(
    std::string token) {
    const std::int64_t now_ms = to_ms(clock_.now());
    std::shared_lock lock(mutex_);
    std::optional<domain::QueueTicket> ticket = find_shared(std::move(token), now_ms);
    lock.unlock();
    co_return ticket;
}

boost::asio::awaitable<void> MemoryWaitingQueue::expire_user(domain::UserId user) {
    {
        std::unique_lock lock(mutex_);
        if (const auto it = by_user_.find(UserKey{user}); it != by_user_.end()) {
            remove_entry(*it);
        }
    }
    co_return;
}

boost::asio::awaitable<std::int64_t> MemoryWaitingQueue::admit(domain::TimePoint now) {
    std::unique_lock lock(mutex_);
    const std::int64_t admitted = admit_locked(to_ms(now));
    lock.unlock();
    co_return admitted;
}

boost::asio::awaitable<app::QueueStats> MemoryWaitingQueue::stats() {
    std::shared_lock lock(mutex_);
    const app::QueueStats stats{waiting_count_, active_count_};
    lock.unlock();
    co_return stats;
}

app::IssuedTicket MemoryWaitingQueue::issue_locked(domain::UserId user, TokenBits fresh,
                                                   std::int64_t now_ms) {
    if (const auto it = by_user_.find(UserKey{user}); it != by_user_.end()) {
        const std::uint32_t slot = *it;
        Entry& entry = slots_[slot];
        if (is_live(entry, now_ms)) {
            if (entry.state == EntryState::kWaiting) {
                entry.last_poll_ms.store(now_ms, std::memory_order_relaxed);
            }
            return {ticket_of(entry, to_hex(entry.token)), false};
        }
        remove_entry(slot);  // dropped or expired, not yet swept
    }

    while (by_token_.contains(fresh)) {  // 2^-128 per pair; never in practice
        fresh = random_token_bits();
    }

    std::uint32_t slot = 0;
    if (!free_slots_.empty()) {
        slot = free_slots_.back();
        free_slots_.pop_back();
    } else {
        assert(slots_.size() < kNoSlot);
        slot = static_cast<std::uint32_t>(slots_.size());
        slots_.emplace_back();
    }
    assert(line_.size() < kNoSlot);

    Entry& entry = slots_[slot];
    assert(entry.state == EntryState::kFree);
    entry.token = fresh;
    entry.user = user;
    entry.last_poll_ms.store(now_ms, std::memory_order_relaxed);
    entry.active_until_ms = 0;
    entry.line_index = static_cast<std::uint32_t>(line_.size());
    entry.state = EntryState::kWaiting;

    line_.push_back(slot);
    line_live_.push_back(1);
    ++waiting_count_;
    by_token_.insert(slot);
    by_user_.insert(slot);
    return {ticket_of(entry, to_hex(fresh)), true};
}

std::optional<domain::QueueTicket> MemoryWaitingQueue::find_shared(std::string token,
                                                                   std::int64_t now_ms) const {
    const std::optional<TokenBits> bits = parse_token_hex(token);
    if (!bits) {
        return std::nullopt;
    }
    const auto it = by_token_.find(*bits);
    if (it == by_token_.end()) {
        return std::nullopt;
    }
    const Entry& entry = slots_[*it];
    if (!is_live(entry, now_ms)) {
        return std::nullopt;
    }
    if (entry.state == EntryState::kWaiting) {
        // Racing polls may store a few microseconds apart in either order; harmless.
        entry.last_poll_ms.store(now_ms, std::memory_order_relaxed);
    }
    return ticket_of(entry, std::move(token));
}

std::int64_t MemoryWaitingQueue::admit_locked(std::int64_t now_ms) {
    expire_active(now_ms);
    refill(now_ms);

    std::int64_t admitted = 0;
    std::int64_t dropped = 0;
    while (budget_milli_ >= kMilliTokensPerAdmission && active_count_ < settings_.max_active &&
           dropped < kMaxHeadDropsPerAdmit) {
        while (line_head_ < line_.size() && line_[line_head_] == kNoSlot) {
            ++line_head_;
        }
        if (line_head_ == line_.size()) {
            break;
        }
        const std::uint32_t slot = line_[line_head_];
        Entry& entry = slots_[slot];
        assert(entry.state == EntryState::kWaiting && entry.line_index == line_head_);
        if (is_stale_waiting(entry, now_ms)) {
            remove_entry(slot);  // a dropped token costs no budget
            ++dropped;
            continue;
        }
        line_[line_head_] = kNoSlot;
        line_live_.add(line_head_, -1);
        --waiting_count_;
        ++line_head_;
        entry.state = EntryState::kActive;
        entry.active_until_ms = now_ms + active_ttl_ms_;
        active_order_.push_back({slot, entry.generation});
        ++active_count_;
        budget_milli_ -= kMilliTokensPerAdmission;
        ++admitted;
    }

    if (!last_sweep_ms_ || now_ms - *last_sweep_ms_ >= kSweepInterval.count()) {
        sweep(now_ms);
    }
    return admitted;
}

bool MemoryWaitingQueue::is_stale_waiting(const Entry& entry, std::int64_t now_ms) const {
    return now_ms - entry.last_poll_ms.load(std::memory_order_relaxed) >= waiting_ttl_ms_;
}

bool MemoryWaitingQueue::is_live(const Entry& entry, std::int64_t now_ms) const {
    switch (entry.state) {
        case EntryState::kWaiting:
            return !is_stale_waiting(entry, now_ms);
        case EntryState::kActive:
            return now_ms < entry.active_until_ms;
        case EntryState::kFree:
            break;
    }
    return false;
}

domain::QueueTicket MemoryWaitingQueue::ticket_of(const Entry& entry, std::string token) const {
    domain::QueueTicket ticket;
    ticket.token = std::move(token);
    ticket.user_id = entry.user;
    if (entry.state == EntryState::kActive) {
        ticket.status = domain::TokenStatus::kActive;
        return ticket;
    }
    assert(entry.state == EntryState::kWaiting);
    ticket.status = domain::TokenStatus::kWaiting;
    ticket.position = static_cast<std::int64_t>(line_live_.prefix(entry.line_index));
    assert(ticket.position >= 1);
    ticket.estimated_wait_seconds =
        (ticket.position + settings_.admit_per_second - 1) / settings_.admit_per_second;
    return ticket;
}

void MemoryWaitingQueue::remove_entry(std::uint32_t slot) {
    Entry& entry = slots_[slot];
    switch (entry.state) {
        case EntryState::kWaiting:
            assert(line_[entry.line_index] == slot);
            line_[entry.line_index] = kNoSlot;
            line_live_.add(entry.line_index, -1);
            --waiting_count_;
            break;
        case EntryState::kActive:
            --active_count_;  // its ActiveRef goes stale with the generation bump
            break;
        case EntryState::kFree:
            assert(false && "removing a free queue entry");
            return;
    }
    free_entry(slot);
}

void MemoryWaitingQueue::free_entry(std::uint32_t slot) {
    Entry& entry = slots_[slot];
    [[maybe_unused]] const std::size_t erased_tokens = by_token_.erase(slot);
    [[maybe_unused]] const std::size_t erased_users = by_user_.erase(slot);
    assert(erased_tokens == 1 && erased_users == 1);
    entry.state = EntryState::kFree;
    ++entry.generation;
    free_slots_.push_back(slot);
}

void MemoryWaitingQueue::expire_active(std::int64_t now_ms) {
    while (!active_order_.empty()) {
        const ActiveRef ref = active_order_.front();
        const Entry& entry = slots_[ref.slot];
        const bool stale_ref =
            entry.generation != ref.generation || entry.state != EntryState::kActive;
        if (!stale_ref && now_ms < entry.active_until_ms) {
            break;
        }
        active_order_.pop_front();
        if (!stale_ref) {
            remove_entry(ref.slot);
        }
    }
}

void MemoryWaitingQueue::refill(std::int64_t now_ms) {
    const std::int64_t capacity_milli = settings_.admit_per_second * kMilliTokensPerAdmission;
    if (!last_refill_ms_) {
        budget_milli_ = capacity_milli;  // a fresh queue admits on its first tick
        last_refill_ms_ = now_ms;
        return;
    }
    // A late ticker catches up at most one second; a clock that steps back adds nothing.
    const std::int64_t elapsed_ms = std::clamp<std::int64_t>(now_ms - *last_refill_ms_, 0, 1000);
    budget_milli_ =
        std::min(capacity_milli, budget_milli_ + elapsed_ms * settings_.admit_per_second);
    last_refill_ms_ = std::max(*last_refill_ms_, now_ms);
}

void MemoryWaitingQueue::sweep(std::int64_t now_ms) {
    last_sweep_ms_ = now_ms;
    std::size_t kept = 0;
    for (std::size_t i = line_head_; i < line_.size(); ++i) {
        const std::uint32_t slot = line_[i];
        if (slot == kNoSlot) {
            continue;
        }
        Entry& entry = slots_[slot];
        if (is_stale_waiting(entry, now_ms)) {
            --waiting_count_;
            free_entry(slot);  // the counter is rebuilt below
            continue;
        }
        entry.line_index = static_cast<std::uint32_t>(kept);
        line_[kept++] = slot;
    }
    line_.resize(kept);
    line_head_ = 0;
    line_live_.assign_ones(kept);
    assert(static_cast<std::int64_t>(kept) == waiting_count_);

    // Give memory back after a rush has drained.
    constexpr std::size_t kShrinkFloor = 4096;
    if (line_.capacity() > 4 * kept + kShrinkFloor) {
        line_.shrink_to_fit();
        line_live_.shrink_to_fit();
    }
    if (by_token_.bucket_count() > 4 * by_token_.size() + kShrinkFloor) {
        by_token_.rehash(0);
        by_user_.rehash(0);
    }
}

}  // namespace concertd::memory
