// The loops that run beside the requests: the queue's admission ticker, the hold-expiry sweeper
// and the outbox relay. Each survives its dependency's failures (logs, pauses, tries again) and
// stops when asked.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <atomic>
#include <chrono>

#include "app/ports/event_bus.hpp"
#include "app/services.hpp"

namespace concertd::app {

struct JobIntervals {
    std::chrono::milliseconds admission{100};
    std::chrono::milliseconds sweep{500};
    std::chrono::milliseconds relay_idle{50};
    std::chrono::milliseconds after_failure{1000};
    int sweep_batch = 500;
    // SPEC: keys are kept at least 24 hours; a retried payment within a week still replays.
    std::chrono::hours idempotency_key_retention{24 * 7};
    // Published outbox events are kept this long (for inspection and replays by hand).
    std::chrono::seconds outbox_retention{24 * 3600};
    std::chrono::milliseconds retention_purge{60'000};
    std::chrono::milliseconds after_commit_retry{200};
    int relay_batch = 500;
};

class BackgroundJobs {
public:
    BackgroundJobs(Ports& ports, OutboxStore& outbox, EventBus& bus, JobIntervals intervals = {})
        : ports_(ports), outbox_(outbox), bus_(bus), intervals_(intervals) {}

    // Spawns the loops on `executor` (a context the caller runs on its own thread).
    void start(boost::asio::any_io_executor executor);
    // Asks the loops to end after their current step (pauses are cut short).
    void stop() { stopping_ = true; }
    // Loops still running; 0 once every loop has seen stop() and returned.
    int running() const { return running_.load(); }

    // One step of each loop, for tests and for the drain at shutdown.
    Task<std::int64_t> admit_once();
    Task<std::size_t> sweep_once();
    Task<std::size_t> relay_once();
    Task<std::int64_t> purge_keys_once();
    Task<std::int64_t> purge_outbox_once();

private:
    Task<void> admission_loop();
    Task<void> sweep_loop();
    Task<void> relay_loop();
    Task<void> retention_loop();
    Task<void> after_commit_loop();

    Ports& ports_;
    OutboxStore& outbox_;
    EventBus& bus_;
    JobIntervals intervals_;
    Task<void> pause(std::chrono::milliseconds duration);

    std::atomic<bool> stopping_{false};
    std::atomic<int> running_{0};
};

// The in-process consumer of SPEC §2 events: keeps a sales ledger, one row per completed payment,
// acting once per event id.
class SalesLedgerConsumer final : public EventConsumer {
public:
    SalesLedgerConsumer(SalesLedgerStore& store, AppStats& stats) : store_(store), stats_(stats) {}
    std::string_view name() const override { return "sales_ledger"; }
    std::vector<std::string_view> event_types() const override {
        return {event_type::kPaymentCompleted};
    }
    Task<void> consume(const Event& event) override;

private:
    SalesLedgerStore& store_;
    AppStats& stats_;
};

}  // namespace concertd::app
