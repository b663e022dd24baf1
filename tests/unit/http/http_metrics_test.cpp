#include "adapters/http/http_metrics.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "adapters/http/router.hpp"

namespace concertd::http {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::seconds;

// The whole exposition after a few records: the format is the contract with Prometheus.
constexpr std::string_view kExpected = R"(# HELP concertd_http_requests_total HTTP requests answered, by route and status.
# TYPE concertd_http_requests_total counter
concertd_http_requests_total{route="GET /a",status="200"} 2
concertd_http_requests_total{route="GET /a",status="201"} 1
concertd_http_requests_total{route="POST /b/{id}",status="409"} 1
concertd_http_requests_total{route="POST /b/{id}",status="4xx"} 1
concertd_http_requests_total{route="unmatched",status="404"} 2
# HELP concertd_http_request_duration_seconds Time from a request's first byte to its response written.
# TYPE concertd_http_request_duration_seconds histogram
concertd_http_request_duration_seconds_bucket{route="GET /a",le="0.0005"} 1
concertd_http_request_duration_seconds_bucket{route="GET /a",le="0.001"} 2
concertd_http_request_duration_seconds_bucket{route="GET /a",le="0.002"} 2
concertd_http_request_duration_seconds_bucket{route="GET /a",le="0.005"} 3
concertd_http_request_duration_seconds_bucket{route="GET /a",le="0.01"} 3
concertd_http_request_duration_seconds_bucket{route="GET /a",le="0.02"} 3
concertd_http_request_duration_seconds_bucket{route="GET /a",le="0.05"} 3
concertd_http_request_duration_seconds_bucket{route="GET /a",le="0.1"} 3
concertd_http_request_duration_seconds_bucket{route="GET /a",le="0.25"} 3
concertd_http_request_duration_seconds_bucket{route="GET /a",le="0.5"} 3
concertd_http_request_duration_seconds_bucket{route="GET /a",le="1"} 3
concertd_http_request_duration_seconds_bucket{route="GET /a",le="2.5"} 3
concertd_http_request_duration_seconds_bucket{route="GET /a",le="+Inf"} 3
concertd_http_request_duration_seconds_sum{route="GET /a"} 0.004400000
concertd_http_request_duration_seconds_count{route="GET /a"} 3
concertd_http_request_duration_seconds_bucket{route="POST /b/{id}",le="0.0005"} 0
concertd_http_request_duration_seconds_bucket{route="POST /b/{id}",le="0.001"} 0
concertd_http_request_duration_seconds_bucket{route="POST /b/{id}",le="0.002"} 0
concertd_http_request_duration_seconds_bucket{route="POST /b/{id}",le="0.005"} 0
concertd_http_request_duration_seconds_bucket{route="POST /b/{id}",le="0.01"} 0
concertd_http_request_duration_seconds_bucket{route="POST /b/{id}",le="0.02"} 0
concertd_http_request_duration_seconds_bucket{route="POST /b/{id}",le="0.05"} 0
concertd_http_request_duration_seconds_bucket{route="POST /b/{id}",le="0.1"} 0
concertd_http_request_duration_seconds_bucket{route="POST /b/{id}",le="0.25"} 0
concertd_http_request_duration_seconds_bucket{route="POST /b/{id}",le="0.5"} 0
concertd_http_request_duration_seconds_bucket{route="POST /b/{id}",le="1"} 1
concertd_http_request_duration_seconds_bucket{route="POST /b/{id}",le="2.5"} 1
concertd_http_request_duration_seconds_bucket{route="POST /b/{id}",le="+Inf"} 2
concertd_http_request_duration_seconds_sum{route="POST /b/{id}"} 3.700000000
concertd_http_request_duration_seconds_count{route="POST /b/{id}"} 2
concertd_http_request_duration_seconds_bucket{route="unmatched",le="0.0005"} 1
concertd_http_request_duration_seconds_bucket{route="unmatched",le="0.001"} 1
concertd_http_request_duration_seconds_bucket{route="unmatched",le="0.002"} 1
concertd_http_request_duration_seconds_bucket{route="unmatched",le="0.005"} 1
concertd_http_request_duration_seconds_bucket{route="unmatched",le="0.01"} 1
concertd_http_request_duration_seconds_bucket{route="unmatched",le="0.02"} 1
concertd_http_request_duration_seconds_bucket{route="unmatched",le="0.05"} 1
concertd_http_request_duration_seconds_bucket{route="unmatched",le="0.1"} 1
concertd_http_request_duration_seconds_bucket{route="unmatched",le="0.25"} 1
concertd_http_request_duration_seconds_bucket{route="unmatched",le="0.5"} 1
concertd_http_request_duration_seconds_bucket{route="unmatched",le="1"} 1
concertd_http_request_duration_seconds_bucket{route="unmatched",le="2.5"} 2
concertd_http_request_duration_seconds_bucket{route="unmatched",le="+Inf"} 2
concertd_http_request_duration_seconds_sum{route="unmatched"} 2.500100000
concertd_http_request_duration_seconds_count{route="unmatched"} 2
# HELP concertd_http_connections_open Client connections open now.
# TYPE concertd_http_connections_open gauge
concertd_http_connections_open 3
# HELP concertd_http_connections_rejected_total Connections closed at once because the connection limit was reached.
# TYPE concertd_http_connections_rejected_total counter
concertd_http_connections_rejected_total 1
)";

TEST(HttpMetricsTest, RendersExpectedExposition) {
    HttpMetrics metrics({"GET /a", "POST /b/{id}"});
    ASSERT_EQ(metrics.unmatched_index(), 2u);
    metrics.record(0, 200, milliseconds(1));       // on a bound: le="0.001"
    metrics.record(0, 200, milliseconds(3));
    metrics.record(0, 201, microseconds(400));
    metrics.record(1, 409, milliseconds(700));
    metrics.record(1, 418, seconds(3));            // not counted exactly: its class; +Inf
    metrics.record(2, 404, microseconds(100));
    metrics.record(99, 404, milliseconds(2500));   // out of range: unmatched
    metrics.connections_open().fetch_add(3);
    metrics.connections_rejected().fetch_add(1);
    EXPECT_EQ(metrics.render(), kExpected);
}

TEST(HttpMetricsTest, EmptyMetricsStillListEveryHistogram) {
    HttpMetrics metrics({});
    const std::string text = metrics.render();
    EXPECT_EQ(text.find("concertd_http_requests_total{"), std::string::npos);
    EXPECT_NE(text.find("concertd_http_request_duration_seconds_count{route=\"unmatched\"} 0\n"),
              std::string::npos);
    EXPECT_NE(text.find("concertd_http_connections_open 0\n"), std::string::npos);
}

TEST(HttpMetricsTest, OddStatusesAndLatencies) {
    HttpMetrics metrics({"GET /x"});
    metrics.record(0, 99, milliseconds(1));
    metrics.record(0, 600, milliseconds(1));
    metrics.record(0, 307, milliseconds(-5));  // a clock step backwards counts as 0
    const std::string text = metrics.render();
    EXPECT_NE(text.find("{route=\"GET /x\",status=\"other\"} 2\n"), std::string::npos) << text;
    EXPECT_NE(text.find("{route=\"GET /x\",status=\"3xx\"} 1\n"), std::string::npos) << text;
    EXPECT_NE(text.find("_bucket{route=\"GET /x\",le=\"0.0005\"} 1\n"), std::string::npos);
    EXPECT_NE(text.find("_sum{route=\"GET /x\"} 0.002000000\n"), std::string::npos);
}

TEST(HttpMetricsTest, EscapesLabelValues) {
    HttpMetrics metrics({"GET /a\"b\\c\nd"});
    metrics.record(0, 200, milliseconds(1));
    EXPECT_NE(metrics.render().find(R"({route="GET /a\"b\\c\nd",status="200"} 1)"),
              std::string::npos);
}

TEST(HttpMetricsTest, ConcurrentRecordsAreAllCounted) {
    HttpMetrics metrics({"GET /a"});
    constexpr int kThreads = 12;  // more than the shards: some threads share one
    constexpr int kRecordsPerThread = 20000;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&metrics] {
            for (int i = 0; i < kRecordsPerThread; ++i) metrics.record(0, 200, microseconds(1));
        });
    }
    for (auto& thread : threads) thread.join();
    const std::string total = std::to_string(kThreads * kRecordsPerThread);
    const std::string text = metrics.render();
    EXPECT_NE(text.find("{route=\"GET /a\",status=\"200\"} " + total + "\n"), std::string::npos);
    EXPECT_NE(text.find("_count{route=\"GET /a\"} " + total + "\n"), std::string::npos);
    EXPECT_NE(text.find("_sum{route=\"GET /a\"} 0.240000000\n"), std::string::npos) << text;
}

TEST(HttpMetricsTest, RouteLabelsFollowRouteIndex) {
    Router router;
    const auto handler = [](const Request&, const RouteParams&) -> boost::asio::awaitable<Response> {
        co_return Response{};
    };
    router.add(Verb::get, "/v1/schedules/{scheduleId}/seats", handler);
    router.add(Verb::post, "/v1/reservations", handler);
    EXPECT_EQ(route_labels(router),
              (std::vector<std::string>{"GET /v1/schedules/{scheduleId}/seats",
                                        "POST /v1/reservations"}));
}

}  // namespace
}  // namespace concertd::http
