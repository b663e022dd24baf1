#include "adapters/redis/abandoned_leases.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <deque>
#include <mutex>
#include <unordered_set>
#include <utility>
#include <vector>

namespace concertd::redis {

namespace asio = boost::asio;

struct AbandonedLeases::State {
    struct Entry {
        std::string redis_key;
        std::string owner;
        std::chrono::steady_clock::time_point since;
        int answered = 0;  // rounds in which Redis answered its release
    };

    mutable std::mutex mutex;  // guards everything below; never held across a co_await
    std::deque<Entry> entries;  // oldest first
    bool sweeping = false;      // a sweeper coroutine exists
    bool stopped = false;
    asio::any_io_executor executor;       // the sweeper's
    asio::steady_timer* timer = nullptr;  // the sweeper's, while it sleeps
};

AbandonedLeases::AbandonedLeases(RedisClient& client, const RedisScript& release)
    : client_(client), release_(release), state_(std::make_shared<State>()) {}

AbandonedLeases::~AbandonedLeases() {
    std::lock_guard guard(state_->mutex);
    state_->stopped = true;
    if (state_->timer == nullptr) return;  // mid-round: it sees `stopped` before the next one
    // Timers are not thread-safe: cancel on the sweeper's own io_context.
    asio::post(state_->executor, [state = state_] {
        std::lock_guard guard(state->mutex);
        if (state->timer != nullptr) state->timer->cancel();
    });
}

void AbandonedLeases::add(const asio::any_io_executor& executor, std::string redis_key,
                          std::string owner) {
    {
        std::lock_guard guard(state_->mutex);
        if (state_->stopped) return;
        if (state_->entries.size() >= kMaxEntries) state_->entries.pop_front();
        state_->entries.push_back(
            {std::move(redis_key), std::move(owner), std::chrono::steady_clock::now(), 0});
        if (state_->sweeping) return;
        state_->sweeping = true;
        state_->executor = executor;
    }
    // Unlocked: co_spawn may start running the sweeper right here, on this thread.
    asio::co_spawn(executor, sweep(client_, release_, state_), asio::detached);
}

std::size_t AbandonedLeases::size() const {
    std::lock_guard guard(state_->mutex);
    return state_->entries.size();
}

asio::awaitable<void> AbandonedLeases::sweep(RedisClient& client, const RedisScript& release,
                                             std::shared_ptr<State> state) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    // However this frame ends (also destroyed with its io_context), nobody may touch the timer
    // any more, and the next add() starts a new sweeper.
    struct Detach {
        State& state;
        ~Detach() {
            std::lock_guard guard(state.mutex);
            state.timer = nullptr;
            state.sweeping = false;
        }
    } detach{*state};
    for (;;) {
        {
            std::lock_guard guard(state->mutex);
            if (state->stopped) co_return;
            state->timer = &timer;
        }
        timer.expires_after(kPeriod);
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
        std::vector<std::vector<std::string>> releases;
        std::unordered_set<std::string> owners;
        {
            std::lock_guard guard(state->mutex);
            state->timer = nullptr;
            if (state->stopped || state->entries.empty()) co_return;
            const std::size_t batch = std::min(state->entries.size(), kBatch);
            for (std::size_t i = 0; i < batch; ++i) {
                const auto& entry = state->entries[i];
                releases.push_back({"EVAL", release.source, "1", entry.redis_key, entry.owner});
                owners.insert(entry.owner);
            }
        }
        bool answered = false;
        std::size_t deleted = 0;
        try {
            const auto replies = co_await client.pipeline(std::move(releases));
            answered = std::all_of(replies.begin(), replies.end(), [](const RedisReply& reply) {
                return reply.type == RedisReply::Type::kInteger;
            });
            for (const auto& reply : replies) deleted += reply.integer == 1 ? 1 : 0;
        } catch (const std::exception&) {
            // Still away: the next round tries again.
        }
        if (deleted > 0) {
            spdlog::info("redis lock: released {} lease(s) granted to acquires given up on", deleted);
        }
        const auto now = std::chrono::steady_clock::now();
        std::lock_guard guard(state->mutex);
        std::erase_if(state->entries, [&](State::Entry& entry) {
            if (answered && owners.contains(entry.owner)) {
                ++entry.answered;
            }
            return entry.answered >= kAnsweredRounds || now - entry.since > kKeep;
        });
    }
}

}  // namespace concertd::redis
