// The in-process event bus (SPEC §4 embedded mode): the outbox relay hands each batch straight
// to the process's consumers.
//
// Guarantees: publish() delivers the events of a batch in order, each to every consumer in the
// order given, awaiting each consume() before the next. If a consumer throws, publish() logs it
// and rethrows at once; the rest of the batch is not delivered, the relay sends the whole batch
// again, and consumers that already saw an event ignore it by its id (at least once delivery).
#pragma once

#include <vector>

#include "app/ports/event_bus.hpp"

namespace concertd::memory {

class MemoryEventBus final : public app::EventBus {
public:
    // The consumers must outlive the bus; none may be null.
    explicit MemoryEventBus(std::vector<app::EventConsumer*> consumers);

    boost::asio::awaitable<void> publish(const std::vector<domain::Event>& batch) override;

private:
    std::vector<app::EventConsumer*> consumers_;
};

}  // namespace concertd::memory
