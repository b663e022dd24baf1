// The operator's endpoints: /healthz (alive), /readyz (every configured dependency answers),
// /metrics (Prometheus text) and /openapi.yaml.
#pragma once

#include <functional>

#include "adapters/http/http_metrics.hpp"
#include "adapters/http/http_types.hpp"
#include "adapters/http/router.hpp"
#include "app/ports/storage.hpp"
#include "app/ports/waiting_queue.hpp"
#include "app/stats.hpp"

namespace concertd::http {

struct OpsSources {
    HttpMetrics* http_metrics = nullptr;  // set once the router is complete
    app::AppStats& stats;
    app::WaitingQueue& queue;
    app::OutboxStore& outbox;
    // Every configured dependency, by name ("database", "redis", ...).
    std::vector<std::pair<std::string, app::DependencyHealth*>> dependencies;
};

class OpsHandlers {
public:
    explicit OpsHandlers(OpsSources sources) : sources_(sources) {}
    void add_routes(Router& router);
    void set_http_metrics(HttpMetrics& metrics) { sources_.http_metrics = &metrics; }
    static std::vector<Router::RouteInfo> routes();

    boost::asio::awaitable<Response> healthz(const Request& request, const RouteParams& params);
    boost::asio::awaitable<Response> readyz(const Request& request, const RouteParams& params);
    boost::asio::awaitable<Response> metrics(const Request& request, const RouteParams& params);
    boost::asio::awaitable<Response> openapi(const Request& request, const RouteParams& params);

private:
    OpsSources sources_;
};

}  // namespace concertd::http
