#include "adapters/kafka/kafka_producer.hpp"

#include <librdkafka/rdkafkacpp.h>
#include <spdlog/spdlog.h>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <functional>
#include <stdexcept>

#include "domain/outcome.hpp"

namespace concertd::kafka {

namespace asio = boost::asio;

namespace {

constexpr auto kPollInterval = std::chrono::milliseconds(50);
constexpr auto kProbeInterval = std::chrono::seconds(1);
constexpr int kProbeTimeoutMs = 500;
constexpr int kStopFlushMs = 2000;

// One send() waiting for its messages' delivery reports.
struct BatchWait {
    std::mutex mutex;
    std::size_t remaining = 0;
    std::string first_error;
    std::function<void()> resume;  // set once send() suspended; posts to its executor

    // From the poll thread (or send() itself for a message librdkafka refused at once).
    void finish_one(const std::string& error) {
        std::function<void()> ready;
        {
            std::lock_guard lock(mutex);
            if (!error.empty() && first_error.empty()) first_error = error;
            if (--remaining == 0) ready.swap(resume);
        }
        if (ready) ready();
    }
};

// Resumes the coroutine behind `handler` on its own executor, from any thread.
template <class Handler>
std::function<void()> resumer(Handler handler) {
    auto executor = asio::get_associated_executor(handler);
    auto shared = std::make_shared<Handler>(std::move(handler));
    return [executor, shared] { asio::post(executor, [shared] { std::move(*shared)(); }); };
}

void set(RdKafka::Conf& conf, const std::string& name, const std::string& value) {
    std::string error;
    if (conf.set(name, value, error) != RdKafka::Conf::CONF_OK) {
        throw std::runtime_error("kafka producer setting " + name + ": " + error);
    }
}

}  // namespace

// Delivery reports (on the poll thread) and client errors.
class KafkaProducer::Reports final : public RdKafka::DeliveryReportCb, public RdKafka::EventCb {
public:
    explicit Reports(KafkaProducer& owner) : owner_(owner) {}

    void dr_cb(RdKafka::Message& message) override {
        auto* wait = static_cast<std::shared_ptr<BatchWait>*>(message.msg_opaque());
        if (message.err() == RdKafka::ERR__FATAL) owner_.fatal_ = true;
        if (message.err() == RdKafka::ERR_NO_ERROR) owner_.reachable_ = true;
        (*wait)->finish_one(message.err() == RdKafka::ERR_NO_ERROR ? std::string()
                                                                   : message.errstr());
        delete wait;
    }

    void event_cb(RdKafka::Event& event) override {
        if (event.type() != RdKafka::Event::EVENT_ERROR) return;
        if (event.fatal()) {
            spdlog::error("kafka producer fatal error: {}; building a new producer", event.str());
            owner_.fatal_ = true;
        } else if (event.err() == RdKafka::ERR__ALL_BROKERS_DOWN) {
            owner_.reachable_ = false;
        }
    }

private:
    KafkaProducer& owner_;
};

KafkaProducer::KafkaProducer(KafkaSettings settings)
    : settings_(std::move(settings)), reports_(std::make_unique<Reports>(*this)) {
    producer_ = build();
    poller_ = std::thread([this] { poll_loop(); });
}

KafkaProducer::~KafkaProducer() { stop(); }

std::shared_ptr<RdKafka::Producer> KafkaProducer::build() {
    std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
    set(*conf, "bootstrap.servers", settings_.brokers);
    set(*conf, "enable.idempotence", "true");
    set(*conf, "message.timeout.ms", std::to_string(settings_.delivery_timeout.count()));
    set(*conf, "linger.ms", "5");
    // A broker back from an outage is found within a second (the default backs off to 10 s).
    set(*conf, "reconnect.backoff.max.ms", "1000");
    set(*conf, "client.id", "concertd-relay");
    std::string error;
    if (conf->set("dr_cb", static_cast<RdKafka::DeliveryReportCb*>(reports_.get()), error) !=
            RdKafka::Conf::CONF_OK ||
        conf->set("event_cb", static_cast<RdKafka::EventCb*>(reports_.get()), error) !=
            RdKafka::Conf::CONF_OK) {
        throw std::runtime_error("kafka producer callbacks: " + error);
    }
    std::shared_ptr<RdKafka::Producer> producer(RdKafka::Producer::create(conf.get(), error));
    if (!producer) throw std::runtime_error("kafka producer: " + error);
    return producer;
}

std::shared_ptr<RdKafka::Producer> KafkaProducer::current() {
    std::lock_guard lock(mutex_);
    return producer_;
}

// After a fatal error the producer can send nothing more: fail what it still holds (each
// waiting batch gets its report), then start over with a fresh producer id.
void KafkaProducer::rebuild() {
    auto fresh = build();
    std::shared_ptr<RdKafka::Producer> old;
    {
        std::lock_guard lock(mutex_);
        old = std::exchange(producer_, fresh);
    }
    old->purge(RdKafka::Producer::PURGE_QUEUE | RdKafka::Producer::PURGE_INFLIGHT);
    old->flush(kStopFlushMs);
    fatal_ = false;
}

void KafkaProducer::poll_loop() {
    auto next_probe = std::chrono::steady_clock::now();
    while (!stopping_) {
        if (fatal_) {
            try {
                rebuild();
            } catch (const std::exception& error) {
                spdlog::error("kafka producer rebuild failed: {}", error.what());
            }
        }
        auto producer = current();
        producer->poll(static_cast<int>(kPollInterval.count()));
        if (std::chrono::steady_clock::now() >= next_probe) {
            RdKafka::Metadata* metadata = nullptr;
            const auto answered = producer->metadata(false, nullptr, &metadata, kProbeTimeoutMs);
            reachable_ = answered == RdKafka::ERR_NO_ERROR;
            delete metadata;
            next_probe = std::chrono::steady_clock::now() + kProbeInterval;
        }
    }
}

void KafkaProducer::stop() {
    if (stopping_.exchange(true)) return;
    if (poller_.joinable()) poller_.join();
    auto producer = current();
    producer->purge(RdKafka::Producer::PURGE_QUEUE | RdKafka::Producer::PURGE_INFLIGHT);
    producer->flush(kStopFlushMs);  // serves the purged messages' reports
}

asio::awaitable<void> KafkaProducer::send(std::vector<OutgoingMessage> messages) {
    if (messages.empty()) co_return;
    auto wait = std::make_shared<BatchWait>();
    wait->remaining = messages.size();
    auto producer = current();
    for (auto& message : messages) {
        std::unique_ptr<RdKafka::Headers> headers(RdKafka::Headers::create());
        for (const auto& [name, value] : message.headers) headers->add(name, value);
        auto* opaque = new std::shared_ptr<BatchWait>(wait);
        const auto error = producer->produce(
            message.topic, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
            message.value.data(), message.value.size(), message.key.data(), message.key.size(),
            0, headers.get(), opaque);
        if (error == RdKafka::ERR_NO_ERROR) {
            (void)headers.release();  // librdkafka owns them now
        } else {
            delete opaque;
            wait->finish_one(RdKafka::err2str(error));
        }
    }
    co_await asio::async_initiate<decltype(asio::use_awaitable), void()>(
        [wait](auto handler) {
            auto resume = resumer(std::move(handler));
            {
                std::lock_guard lock(wait->mutex);
                if (wait->remaining > 0) {
                    wait->resume = std::move(resume);
                    return;
                }
            }
            resume();
        },
        asio::use_awaitable);
    if (!wait->first_error.empty()) {
        throw domain::DependencyUnavailable("kafka: not acknowledged: " + wait->first_error);
    }
}

}  // namespace concertd::kafka
