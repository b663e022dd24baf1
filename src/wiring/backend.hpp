// The adapters behind the ports, chosen by configuration: the embedded set (SQLite, in-process
// queue, lock and cache) or PostgreSQL (its tables for the queue, advisory locks, no cache that
// another process's write could make stale).
#pragma once

#include <memory>

#include "app/ports/catalog_cache.hpp"
#include "app/ports/clock.hpp"
#include "app/ports/distributed_lock.hpp"
#include "app/ports/storage.hpp"
#include "app/ports/waiting_queue.hpp"
#include "app/stats.hpp"
#include "wiring/config.hpp"

namespace concertd::wiring {

// Non-owning views of one back end's adapters; the concrete back end owns them.
class Backend {
public:
    virtual ~Backend() = default;
    // Stops the back end's own threads (SQLite's) after their queued work: nothing they do is
    // posted to an io_context after this returns. For shutdown.
    virtual void quiesce() {}
    app::CatalogStore* catalog = nullptr;
    app::ReservationStore* reservations = nullptr;
    app::WalletStore* wallets = nullptr;
    app::PaymentStore* payments = nullptr;
    app::OutboxStore* outbox = nullptr;
    app::SalesLedgerStore* ledger = nullptr;
    std::vector<std::pair<std::string, app::DependencyHealth*>> dependencies;  // for /readyz
    app::WaitingQueue* queue = nullptr;
    app::DistributedLock* lock = nullptr;
    app::CatalogCache* cache = nullptr;
    // The queue is a table of the reservations' database (app::ServiceSettings).
    bool store_checks_queue_token = false;

    // Adapters added on top of the storage's own (the Redis queue, lock and cache).
    std::vector<std::shared_ptr<void>> extra_parts;
};

// Opens the database (applying migrations). Throws on failure with a message for the operator.
std::unique_ptr<Backend> open_backend(const Config& config, app::AppStats& stats,
                                      const app::ClockPort& clock);

}  // namespace concertd::wiring
