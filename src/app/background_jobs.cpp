#include "app/background_jobs.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdio>

namespace concertd::app {

namespace {

// How long a pause may run before it looks at stop() again.
constexpr std::chrono::milliseconds kPauseSlice{100};

// Counts a loop as running for its whole life.
struct RunningLoop {
    std::atomic<int>& running;
    explicit RunningLoop(std::atomic<int>& counter) : running(counter) { ++running; }
    ~RunningLoop() { --running; }
};

void report_failure(const char* job, const std::exception& error) {
    // stderr, not spdlog: app stays free of the logging library; main routes stderr.
    std::fprintf(stderr, "concertd: %s failed, will retry: %s\n", job, error.what());
}

}  // namespace

void BackgroundJobs::start(boost::asio::any_io_executor executor) {
    boost::asio::co_spawn(executor, admission_loop(), boost::asio::detached);
    boost::asio::co_spawn(executor, sweep_loop(), boost::asio::detached);
    boost::asio::co_spawn(executor, relay_loop(), boost::asio::detached);
    boost::asio::co_spawn(executor, retention_loop(), boost::asio::detached);
    boost::asio::co_spawn(executor, after_commit_loop(), boost::asio::detached);
}

Task<void> BackgroundJobs::pause(std::chrono::milliseconds duration) {
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
    while (duration.count() > 0 && !stopping_) {
        auto slice = std::min(duration, kPauseSlice);
        timer.expires_after(slice);
        co_await timer.async_wait(boost::asio::use_awaitable);
        duration -= slice;
    }
}

Task<std::int64_t> BackgroundJobs::admit_once() {
    auto admitted = co_await ports_.queue.admit(ports_.clock.now());
    ports_.stats.tokens_admitted.add(static_cast<std::uint64_t>(admitted));
    co_return admitted;
}

Task<std::size_t> BackgroundJobs::sweep_once() {
    auto expired = co_await ports_.reservations.expire_due(ports_.clock.now(), intervals_.sweep_batch);
    for (const auto& reservation : expired) {
        co_await ports_.after_commit.invalidate(reservation.schedule_id);
    }
    ports_.stats.holds_expired.add(expired.size());
    co_return expired.size();
}

Task<std::size_t> BackgroundJobs::relay_once() {
    auto published = co_await outbox_.relay(
        intervals_.relay_batch, ports_.clock.now(),
        [this](const std::vector<Event>& batch) { return bus_.publish(batch); });
    ports_.stats.events_published.add(published);
    co_return published;
}

Task<std::int64_t> BackgroundJobs::purge_keys_once() {
    auto cutoff = ports_.clock.now() - intervals_.idempotency_key_retention;
    co_return co_await ports_.payments.purge_idempotency_keys(cutoff, intervals_.sweep_batch);
}

Task<std::int64_t> BackgroundJobs::purge_outbox_once() {
    auto cutoff = ports_.clock.now() - intervals_.outbox_retention;
    co_return co_await outbox_.purge_published(cutoff, intervals_.sweep_batch);
}

Task<void> BackgroundJobs::admission_loop() {
    RunningLoop running(running_);
    while (!stopping_) {
        auto wait = intervals_.admission;
        try {
            co_await admit_once();
        } catch (const std::exception& error) {
            report_failure("queue admission", error);
            wait = intervals_.after_failure;
        }
        co_await pause(wait);
    }
}

Task<void> BackgroundJobs::sweep_loop() {
    RunningLoop running(running_);
    while (!stopping_) {
        auto wait = intervals_.sweep;
        try {
            // A full batch means more are due: go again at once.
            if (co_await sweep_once() == static_cast<std::size_t>(intervals_.sweep_batch)) continue;
        } catch (const std::exception& error) {
            report_failure("hold expiry sweep", error);
            wait = intervals_.after_failure;
        }
        co_await pause(wait);
    }
}

Task<void> BackgroundJobs::relay_loop() {
    RunningLoop running(running_);
    while (!stopping_) {
        auto wait = intervals_.relay_idle;
        try {
            if (co_await relay_once() > 0) continue;
        } catch (const std::exception& error) {
            report_failure("outbox relay", error);
            wait = intervals_.after_failure;
        }
        co_await pause(wait);
    }
}

// Idempotency keys and published outbox events past their retention; a full batch of either
// means more are due: go again at once.
Task<void> BackgroundJobs::retention_loop() {
    RunningLoop running(running_);
    while (!stopping_) {
        bool more = false;
        try {
            more = co_await purge_keys_once() == intervals_.sweep_batch;
        } catch (const std::exception& error) {
            report_failure("idempotency key purge", error);
        }
        try {
            more = co_await purge_outbox_once() == intervals_.sweep_batch || more;
        } catch (const std::exception& error) {
            report_failure("outbox purge", error);
        }
        if (!more) co_await pause(intervals_.retention_purge);
    }
}

// Cache invalidations and token expiries that could not be done when their change committed
// (Redis down) are done as soon as it answers again.
Task<void> BackgroundJobs::after_commit_loop() {
    RunningLoop running(running_);
    while (!stopping_) {
        try {
            if (ports_.after_commit.pending() > 0) co_await ports_.after_commit.retry_pending();
        } catch (const std::exception& error) {
            report_failure("after-commit retry", error);
        }
        co_await pause(intervals_.after_commit_retry);
    }
}

Task<void> SalesLedgerConsumer::consume(const Event& event) {
    if (event.type == event_type::kPaymentCompleted) {
        if (co_await store_.record_sale(event)) stats_.events_consumed.add();
    }
}

}  // namespace concertd::app
