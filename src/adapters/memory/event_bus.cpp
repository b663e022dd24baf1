#include "adapters/memory/event_bus.hpp"

#include <spdlog/spdlog.h>

#include <exception>
#include <stdexcept>
#include <utility>

namespace concertd::memory {
namespace {

std::string describe(std::exception_ptr error) {
    try {
        std::rethrow_exception(std::move(error));
    } catch (const std::exception& e) {
        return e.what();
    } catch (...) {
        return "unknown exception";
    }
}

}  // namespace

MemoryEventBus::MemoryEventBus(std::vector<app::EventConsumer*> consumers)
    : consumers_(std::move(consumers)) {
    for (const app::EventConsumer* consumer : consumers_) {
        if (consumer == nullptr) {
            throw std::invalid_argument("MemoryEventBus: null consumer");
        }
    }
}

boost::asio::awaitable<void> MemoryEventBus::publish(const std::vector<domain::Event>& batch) {
    for (const domain::Event& event : batch) {
        for (app::EventConsumer* consumer : consumers_) {
            // No co_await inside a catch block, so catch into a pointer and rethrow after.
            std::exception_ptr error;
            try {
                co_await consumer->consume(event);
            } catch (...) {
                error = std::current_exception();
            }
            if (error) {
                spdlog::warn("event bus: consumer {} failed on event {} ({} #{}): {}",
                             consumer->name(), event.event_id, event.type, event.sequence,
                             describe(error));
                std::rethrow_exception(error);
            }
        }
    }
}

}  // namespace concertd::memory
