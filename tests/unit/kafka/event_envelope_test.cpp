// The Kafka envelope: topic per event family, the event back from its value, poison refused.
#include <gtest/gtest.h>

#include "adapters/kafka/event_envelope.hpp"
#include "adapters/kafka/kafka_event_bus.hpp"

namespace concertd::kafka {
namespace {

domain::Event sample() {
    domain::Event event;
    event.sequence = 41;
    event.event_id = "7b7c0f3e-1111-4222-8333-944445555666";
    event.type = "reservation.held";
    event.aggregate_id = 1234;
    event.payload_json = R"({"reservationId":1234,"seatNo":7})";
    event.occurred_at = domain::TimePoint(std::chrono::milliseconds(1'795'615'763'160));
    return event;
}

TEST(EventEnvelope, TopicIsTheEventFamily) {
    EXPECT_EQ(topic_for("reservation.held"), "concertd.reservation");
    EXPECT_EQ(topic_for("points.charged"), "concertd.points");
    EXPECT_EQ(topic_for("payment.completed"), "concertd.payment");
}

TEST(EventEnvelope, AnEventComesBackFromItsEnvelope) {
    auto back = parse_envelope(envelope_json(sample()));
    ASSERT_TRUE(back);
    EXPECT_EQ(back->event_id, sample().event_id);
    EXPECT_EQ(back->type, "reservation.held");
    EXPECT_EQ(back->aggregate_id, 1234);
    EXPECT_EQ(back->occurred_at, sample().occurred_at);
    EXPECT_EQ(back->payload_json, sample().payload_json);
}

TEST(EventEnvelope, TheMessageIsKeyedByAggregateWithIdHeaders) {
    auto message = event_message(sample());
    EXPECT_EQ(message.topic, "concertd.reservation");
    EXPECT_EQ(message.key, "1234");
    ASSERT_EQ(message.headers.size(), 2u);
    EXPECT_EQ(message.headers[0].second, sample().event_id);
    EXPECT_EQ(message.headers[1].second, "reservation.held");
}

TEST(EventEnvelope, PoisonIsRefused) {
    for (const char* value : {"", "not json", "[]", "{}", R"({"eventId":1})",
                              R"({"eventId":"a","type":"t","aggregateId":"x","occurredAt":1,"payload":{}})",
                              R"({"eventId":"a","type":"t","aggregateId":1,"occurredAt":1,"payload":3})"}) {
        EXPECT_FALSE(parse_envelope(value)) << value;
    }
}

}  // namespace
}  // namespace concertd::kafka
