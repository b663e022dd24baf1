// The event bus the outbox relay publishes to (SPEC §2 "Events"). Delivery is at least once;
// consumers act once per event id.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <string_view>
#include <vector>

#include "domain/types.hpp"

namespace concertd::app {

class EventConsumer {
public:
    virtual ~EventConsumer() = default;
    virtual std::string_view name() const = 0;
    // The event types it acts on; a bus may deliver others too, and the consumer ignores them.
    virtual std::vector<std::string_view> event_types() const = 0;
    // Must be idempotent per event id; throws to have the event delivered again.
    virtual boost::asio::awaitable<void> consume(const domain::Event& event) = 0;
};

class EventBus {
public:
    virtual ~EventBus() = default;
    // Returns once every event of the batch is accepted (delivered, or acknowledged by a broker);
    // throws if not, and the relay sends the batch again.
    virtual boost::asio::awaitable<void> publish(const std::vector<domain::Event>& batch) = 0;
};

}  // namespace concertd::app
