// The event bus of the configuration (SPEC §4): in-process, where the relay hands each batch to
// the process's consumers; or Apache Kafka (CONCERTD_KAFKA_BROKERS), where the relay produces
// and each consumer is a member of its consumer group in every process (docs/kafka.md).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "app/ports/event_bus.hpp"
#include "app/ports/storage.hpp"
#include "app/stats.hpp"
#include "wiring/config.hpp"

namespace concertd::wiring {

class Events {
public:
    // The consumers must outlive this. Throws when librdkafka refuses the settings.
    Events(const Config& config, std::vector<app::EventConsumer*> consumers, app::AppStats& stats);
    ~Events();

    app::EventBus& bus();
    // Kafka: joins the consumer groups; effects run on `executor`. No-op in-process.
    void start(boost::asio::any_io_executor executor);
    // Kafka: leaves the groups and fails what is still in flight. Call while `executor`'s
    // io_context still runs.
    void stop();
    // Kafka: the broker's health for /readyz; none in-process.
    std::vector<std::pair<std::string, app::DependencyHealth*>> dependencies();

private:
    struct InProcess;
    struct OnKafka;
    std::unique_ptr<InProcess> in_process_;
    std::unique_ptr<OnKafka> kafka_;
};

}  // namespace concertd::wiring
