// Per-route request counters and latency histograms of the HTTP server, rendered in the
// Prometheus text format for GET /metrics.
//
// The hot path (record) takes no lock and allocates nothing: each thread writes relaxed atomics
// in its own cache-line-aligned shard, and render() sums the shards at scrape time (the Seastar
// way). A scrape therefore sees each counter exactly, but not all counters at one instant.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace concertd::http {

class Router;

// The metric label of each route of `router`, in route_index order: "GET /v1/concerts".
std::vector<std::string> route_labels(const Router& router);

class HttpMetrics {
public:
    // Label of the extra route that counts requests no route matched (404, 405, malformed).
    static constexpr std::string_view kUnmatchedLabel = "unmatched";

    // Upper bounds of the latency buckets (le), in nanoseconds and as rendered; +Inf is implicit.
    static constexpr std::size_t kBucketCount = 12;
    static constexpr std::array<std::int64_t, kBucketCount> kBucketBoundsNs = {
        500'000,     1'000'000,   2'000'000,   5'000'000,     10'000'000,    20'000'000,
        50'000'000,  100'000'000, 250'000'000, 500'000'000,   1'000'000'000, 2'500'000'000};
    static constexpr std::array<std::string_view, kBucketCount> kBucketLabels = {
        "0.0005", "0.001", "0.002", "0.005", "0.01", "0.02",
        "0.05",   "0.1",   "0.25",  "0.5",   "1",    "2.5"};

    // `route_labels` in route_index order; index route_labels.size() is "unmatched".
    explicit HttpMetrics(std::vector<std::string> route_labels);
    ~HttpMetrics();
    HttpMetrics(const HttpMetrics&) = delete;
    HttpMetrics& operator=(const HttpMetrics&) = delete;

    // route_index of requests no route matched.
    std::size_t unmatched_index() const { return labels_.size() - 1; }

    // Counts one answered request. Any thread; lock-free and allocation-free. An out-of-range
    // route_index counts as unmatched; a status outside 100..599 counts as "other".
    void record(std::size_t route_index, unsigned status, std::chrono::nanoseconds latency);

    // Open client connections (gauge) and connections refused over the limit (counter); the
    // server updates them.
    std::atomic<std::int64_t>& connections_open() { return connections_open_; }
    std::atomic<std::uint64_t>& connections_rejected() { return connections_rejected_; }

    // All metrics in the Prometheus text exposition format (version 0.0.4).
    std::string render() const;

private:
    struct Cells;

    Cells& cells_for(std::size_t shard, std::size_t route) const;

    std::vector<std::string> labels_;  // routes, then "unmatched"
    std::unique_ptr<Cells[]> cells_;    // kShardCount × labels_.size()
    std::atomic<std::int64_t> connections_open_{0};
    std::atomic<std::uint64_t> connections_rejected_{0};
};

}  // namespace concertd::http
