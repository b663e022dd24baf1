#include "adapters/memory/event_bus.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "memory/memory_test_support.hpp"

namespace concertd::memory {
namespace {

using testing::Runner;
using Delivery = std::pair<std::string, std::string>;  // consumer, event id

class RecordingConsumer final : public app::EventConsumer {
public:
    RecordingConsumer(std::string name, std::vector<Delivery>& log, std::string fail_on = "")
        : name_(std::move(name)), log_(log), fail_on_(std::move(fail_on)) {}

    std::string_view name() const override { return name_; }
    std::vector<std::string_view> event_types() const override { return {"test.event"}; }
    boost::asio::awaitable<void> consume(const domain::Event& event) override {
        if (event.event_id == fail_on_) {
            throw std::runtime_error("consumer down");
        }
        log_.emplace_back(name_, event.event_id);
        co_return;
    }

private:
    std::string name_;
    std::vector<Delivery>& log_;
    std::string fail_on_;
};

std::vector<domain::Event> batch_of(std::initializer_list<const char*> ids) {
    std::vector<domain::Event> batch;
    std::int64_t sequence = 0;
    for (const char* id : ids) {
        domain::Event event;
        event.sequence = ++sequence;
        event.event_id = id;
        event.type = std::string(domain::event_type::kReservationHeld);
        batch.push_back(std::move(event));
    }
    return batch;
}

TEST(MemoryEventBus, DeliversEachEventToEveryConsumerInOrder) {
    std::vector<Delivery> log;
    RecordingConsumer first("first", log);
    RecordingConsumer second("second", log);
    MemoryEventBus bus({&first, &second});
    Runner runner;
    runner.run(bus.publish(batch_of({"e1", "e2", "e3"})));
    const std::vector<Delivery> expected = {{"first", "e1"},  {"second", "e1"}, {"first", "e2"},
                                            {"second", "e2"}, {"first", "e3"},  {"second", "e3"}};
    EXPECT_EQ(log, expected);
    runner.run(bus.publish({}));
    EXPECT_EQ(log.size(), expected.size());
}

TEST(MemoryEventBus, RethrowsWhenAConsumerThrowsAndStops) {
    std::vector<Delivery> log;
    RecordingConsumer first("first", log);
    RecordingConsumer second("second", log, "e2");
    MemoryEventBus bus({&first, &second});
    Runner runner;
    EXPECT_THROW(runner.run(bus.publish(batch_of({"e1", "e2", "e3"}))), std::runtime_error);
    const std::vector<Delivery> expected = {{"first", "e1"}, {"second", "e1"}, {"first", "e2"}};
    EXPECT_EQ(log, expected);
}

TEST(MemoryEventBus, RefusesANullConsumer) {
    EXPECT_THROW(MemoryEventBus({nullptr}), std::invalid_argument);
}

}  // namespace
}  // namespace concertd::memory
