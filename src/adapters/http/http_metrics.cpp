#include "adapters/http/http_metrics.hpp"

#include <cassert>
#include <charconv>

#include "adapters/http/router.hpp"

namespace concertd::http {
namespace {

// Enough shards that the I/O threads of a 2..8-core box rarely share one; each costs about
// 0.5 KiB per route.
constexpr std::size_t kShardCount = 8;

// Statuses counted exactly; any other goes to its class ("4xx") so the table stays small and
// fixed. The set covers every status SPEC §3 and the server produce.
constexpr std::array<unsigned, 26> kExactStatuses = {
    200, 201, 202, 204, 301, 302, 304, 400, 401, 403, 404, 405, 408,
    409, 411, 413, 414, 415, 422, 429, 431, 500, 501, 502, 503, 504};
constexpr std::size_t kClassSlot = kExactStatuses.size();  // 1xx..5xx follow the exact ones
constexpr std::size_t kOtherSlot = kClassSlot + 5;         // outside 100..599
constexpr std::size_t kStatusSlotCount = kOtherSlot + 1;

constexpr std::array<std::string_view, 6> kFallbackLabels = {"1xx", "2xx", "3xx",
                                                             "4xx", "5xx", "other"};

// status → slot, built at compile time so record() is one table load.
constexpr auto kStatusSlots = [] {
    std::array<std::uint8_t, 600> slots{};
    for (unsigned status = 0; status < slots.size(); ++status) {
        slots[status] = static_cast<std::uint8_t>(status < 100 ? kOtherSlot
                                                               : kClassSlot + status / 100 - 1);
    }
    for (std::size_t i = 0; i < kExactStatuses.size(); ++i) {
        slots[kExactStatuses[i]] = static_cast<std::uint8_t>(i);
    }
    return slots;
}();

std::size_t slot_of(unsigned status) {
    return status < kStatusSlots.size() ? kStatusSlots[status] : kOtherSlot;
}

// Each thread keeps to one shard for its life; threads beyond kShardCount share.
std::size_t this_thread_shard() {
    static std::atomic<std::size_t> next_shard{0};
    thread_local const std::size_t shard =
        next_shard.fetch_add(1, std::memory_order_relaxed) % kShardCount;
    return shard;
}

void append_number(std::string& out, std::uint64_t value) {
    char digits[24];
    const auto result = std::to_chars(digits, digits + sizeof digits, value);
    out.append(digits, result.ptr);
}

void append_number(std::string& out, std::int64_t value) {
    char digits[24];
    const auto result = std::to_chars(digits, digits + sizeof digits, value);
    out.append(digits, result.ptr);
}

// Nanoseconds as decimal seconds, exactly: 1500000 → "0.001500000".
void append_seconds(std::string& out, std::uint64_t nanoseconds) {
    append_number(out, nanoseconds / 1'000'000'000);
    std::string fraction = std::to_string(nanoseconds % 1'000'000'000);
    out.push_back('.');
    out.append(9 - fraction.size(), '0');
    out.append(fraction);
}

// Label values escape backslash, double quote and newline (Prometheus text format).
void append_label_value(std::string& out, std::string_view value) {
    for (const char c : value) {
        switch (c) {
            case '\\': out.append("\\\\"); break;
            case '"': out.append("\\\""); break;
            case '\n': out.append("\\n"); break;
            default: out.push_back(c);
        }
    }
}

}  // namespace

// One route's counters in one shard. alignas keeps shards off each other's cache lines.
struct alignas(64) HttpMetrics::Cells {
    std::array<std::atomic<std::uint64_t>, kStatusSlotCount> statuses{};
    std::array<std::atomic<std::uint64_t>, kBucketCount + 1> buckets{};  // not cumulative; +Inf last
    std::atomic<std::uint64_t> sum_ns{0};
};

std::vector<std::string> route_labels(const Router& router) {
    std::vector<std::string> labels;
    labels.reserve(router.routes().size());
    for (const auto& route : router.routes()) {
        std::string label(boost::beast::http::to_string(route.method));
        label.push_back(' ');
        label.append(route.pattern);
        labels.push_back(std::move(label));
    }
    return labels;
}

HttpMetrics::HttpMetrics(std::vector<std::string> route_labels) : labels_(std::move(route_labels)) {
    labels_.emplace_back(kUnmatchedLabel);
    cells_ = std::make_unique<Cells[]>(kShardCount * labels_.size());
}

HttpMetrics::~HttpMetrics() = default;

HttpMetrics::Cells& HttpMetrics::cells_for(std::size_t shard, std::size_t route) const {
    assert(shard < kShardCount && route < labels_.size());
    return cells_[shard * labels_.size() + route];
}

void HttpMetrics::record(std::size_t route_index, unsigned status,
                         std::chrono::nanoseconds latency) {
    if (route_index >= labels_.size()) route_index = unmatched_index();
    const std::int64_t latency_ns = latency.count() < 0 ? 0 : latency.count();
    std::size_t bucket = 0;
    while (bucket < kBucketCount && latency_ns > kBucketBoundsNs[bucket]) ++bucket;

    Cells& cells = cells_for(this_thread_shard(), route_index);
    cells.statuses[slot_of(status)].fetch_add(1, std::memory_order_relaxed);
    cells.buckets[bucket].fetch_add(1, std::memory_order_relaxed);
    cells.sum_ns.fetch_add(static_cast<std::uint64_t>(latency_ns), std::memory_order_relaxed);
}

std::string HttpMetrics::render() const {
    const std::size_t route_count = labels_.size();
    struct Totals {
        std::array<std::uint64_t, kStatusSlotCount> statuses{};
        std::array<std::uint64_t, kBucketCount + 1> buckets{};
        std::uint64_t sum_ns = 0;
    };
    std::vector<Totals> totals(route_count);
    for (std::size_t shard = 0; shard < kShardCount; ++shard) {
        for (std::size_t route = 0; route < route_count; ++route) {
            const Cells& cells = cells_for(shard, route);
            Totals& total = totals[route];
            for (std::size_t i = 0; i < kStatusSlotCount; ++i) {
                total.statuses[i] += cells.statuses[i].load(std::memory_order_relaxed);
            }
            for (std::size_t i = 0; i <= kBucketCount; ++i) {
                total.buckets[i] += cells.buckets[i].load(std::memory_order_relaxed);
            }
            total.sum_ns += cells.sum_ns.load(std::memory_order_relaxed);
        }
    }

    std::string out;
    out.reserve(256 + route_count * 1600);

    out.append("# HELP concertd_http_requests_total HTTP requests answered, by route and status.\n");
    out.append("# TYPE concertd_http_requests_total counter\n");
    for (std::size_t route = 0; route < route_count; ++route) {
        for (std::size_t slot = 0; slot < kStatusSlotCount; ++slot) {
            const std::uint64_t count = totals[route].statuses[slot];
            if (count == 0) continue;  // statuses are open-ended: only those seen are listed
            out.append("concertd_http_requests_total{route=\"");
            append_label_value(out, labels_[route]);
            out.append("\",status=\"");
            if (slot < kClassSlot) {
                append_number(out, std::uint64_t{kExactStatuses[slot]});
            } else {
                out.append(kFallbackLabels[slot - kClassSlot]);
            }
            out.append("\"} ");
            append_number(out, count);
            out.push_back('\n');
        }
    }

    out.append(
        "# HELP concertd_http_request_duration_seconds Time from a request's first byte to its "
        "response written.\n");
    out.append("# TYPE concertd_http_request_duration_seconds histogram\n");
    for (std::size_t route = 0; route < route_count; ++route) {
        const Totals& total = totals[route];
        std::uint64_t cumulative = 0;
        for (std::size_t bucket = 0; bucket <= kBucketCount; ++bucket) {
            cumulative += total.buckets[bucket];
            out.append("concertd_http_request_duration_seconds_bucket{route=\"");
            append_label_value(out, labels_[route]);
            out.append("\",le=\"");
            out.append(bucket < kBucketCount ? kBucketLabels[bucket] : std::string_view("+Inf"));
            out.append("\"} ");
            append_number(out, cumulative);
            out.push_back('\n');
        }
        out.append("concertd_http_request_duration_seconds_sum{route=\"");
        append_label_value(out, labels_[route]);
        out.append("\"} ");
        append_seconds(out, total.sum_ns);
        out.push_back('\n');
        out.append("concertd_http_request_duration_seconds_count{route=\"");
        append_label_value(out, labels_[route]);
        out.append("\"} ");
        append_number(out, cumulative);
        out.push_back('\n');
    }

    out.append("# HELP concertd_http_connections_open Client connections open now.\n");
    out.append("# TYPE concertd_http_connections_open gauge\n");
    out.append("concertd_http_connections_open ");
    append_number(out, connections_open_.load(std::memory_order_relaxed));
    out.push_back('\n');

    out.append(
        "# HELP concertd_http_connections_rejected_total Connections closed at once because "
        "the connection limit was reached.\n");
    out.append("# TYPE concertd_http_connections_rejected_total counter\n");
    out.append("concertd_http_connections_rejected_total ");
    append_number(out, connections_rejected_.load(std::memory_order_relaxed));
    out.push_back('\n');
    return out;
}

}  // namespace concertd::http
