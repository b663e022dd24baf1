#include "adapters/memory/distributed_lock.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cassert>
#include <utility>

#include "adapters/memory/random_token.hpp"

namespace concertd::memory {

struct MemoryDistributedLock::Waiter {
    boost::asio::any_io_executor executor;
    std::string owner;  // chosen before queuing; the lease's owner if granted

    // Under the lock's mutex_.
    std::list<std::shared_ptr<Waiter>>::iterator position;  // valid until granted
    bool granted = false;
    std::uint64_t fence = 0;

    // The timer in the waiting coroutine's frame, null once the coroutine stopped waiting. Its own
    // mutex, because a frame may be destroyed on another thread while a cancel is posted.
    std::mutex timer_mutex;
    boost::asio::steady_timer* timer = nullptr;
};

// Lives in the waiting coroutine's frame. settle(true) after the wait takes the lease or leaves
// the line; if the frame is destroyed first, the destructor leaves the line or passes the grant
// on, so a dead waiter never keeps a key.
class MemoryDistributedLock::WaitGuard {
public:
    WaitGuard(MemoryDistributedLock& lock, std::string key, std::shared_ptr<Waiter> waiter)
        : lock_(lock), key_(std::move(key)), waiter_(std::move(waiter)) {}
    WaitGuard(const WaitGuard&) = delete;
    WaitGuard& operator=(const WaitGuard&) = delete;
    ~WaitGuard() {
        if (!settled_) {
            settle(false);
        }
    }

    std::optional<app::LockLease> settle(bool claim) {
        {
            std::lock_guard timer_lock(waiter_->timer_mutex);
            waiter_->timer = nullptr;
        }
        std::lock_guard lock(lock_.mutex_);
        const auto it = lock_.keys_.find(key_);
        assert(it != lock_.keys_.end() && "a key with a waiter is held");
        if (waiter_->granted) {
            assert(it->second.owner == waiter_->owner);
            if (claim) {
                app::LockLease lease{key_, waiter_->owner, waiter_->fence};
                settled_ = true;  // only now: if building the lease threw, the destructor passes on
                return lease;
            }
            settled_ = true;
            lock_.hand_off_locked(it);
            return std::nullopt;
        }
        settled_ = true;
        it->second.waiters.erase(waiter_->position);
        return std::nullopt;
    }

private:
    MemoryDistributedLock& lock_;
    std::string key_;
    std::shared_ptr<Waiter> waiter_;
    bool settled_ = false;
};

boost::asio::awaitable<std::optional<app::LockLease>> MemoryDistributedLock::acquire(
    std::string key, std::chrono::milliseconds wait) {
    std::string owner = random_token_hex();  // the system call stays outside the mutex
    const auto executor = co_await boost::asio::this_coro::executor;
    boost::asio::steady_timer timer(executor);
    auto waiter = std::make_shared<Waiter>();

    std::optional<app::LockLease> lease;
    bool queued = false;
    {
        std::lock_guard lock(mutex_);
        const auto [it, inserted] = keys_.try_emplace(key);
        KeyState& state = it->second;
        if (inserted) {
            state.owner = owner;
            state.fence = ++last_fence_;
            lease = app::LockLease{key, std::move(owner), state.fence};
        } else if (wait.count() > 0 && state.waiters.size() < kMaxWaitersPerKey) {
            waiter->executor = executor;
            waiter->owner = std::move(owner);
            waiter->timer = &timer;  // a posted cancel runs only after this coroutine suspends
            state.waiters.push_back(waiter);
            waiter->position = std::prev(state.waiters.end());
            queued = true;
        }
    }
    if (!queued) {
        co_return lease;
    }

    WaitGuard guard(*this, key, waiter);
    timer.expires_after(wait);
    boost::system::error_code ec;  // expiry, or a cancel from a grant or from the caller
    co_await timer.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
    co_return guard.settle(true);
}

boost::asio::awaitable<void> MemoryDistributedLock::release(app::LockLease lease) {
    {
        std::lock_guard lock(mutex_);
        const auto it = keys_.find(lease.key);
        if (it != keys_.end() && it->second.owner == lease.owner &&
            it->second.fence == lease.fence) {
            hand_off_locked(it);
        }
    }
    co_return;
}

std::size_t MemoryDistributedLock::key_count() const {
    std::lock_guard lock(mutex_);
    return keys_.size();
}

void MemoryDistributedLock::hand_off_locked(KeyMap::iterator it) {
    KeyState& state = it->second;
    if (state.waiters.empty()) {
        keys_.erase(it);
        return;
    }
    std::shared_ptr<Waiter> next = std::move(state.waiters.front());
    state.waiters.pop_front();
    next->granted = true;
    next->fence = ++last_fence_;
    state.owner = next->owner;
    state.fence = next->fence;
    // Wake the waiter on its own executor: a timer must not be touched from another thread.
    boost::asio::post(next->executor, [next] {
        std::lock_guard timer_lock(next->timer_mutex);
        if (next->timer != nullptr) {
            next->timer->cancel();
        }
    });
}

}  // namespace concertd::memory
