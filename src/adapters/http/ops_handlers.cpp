#include "adapters/http/ops_handlers.hpp"

#include <boost/json.hpp>

#include "adapters/http/json_io.hpp"
#include "domain/outcome.hpp"

namespace concertd::generated {
extern const std::string_view kOpenApiYaml;
}

namespace concertd::http {

using boost::asio::awaitable;

namespace {

struct OpsRoute {
    Verb method;
    const char* pattern;
    awaitable<Response> (OpsHandlers::*handler)(const Request&, const RouteParams&);
};

constexpr OpsRoute kOpsRoutes[] = {
    {Verb::get, "/healthz", &OpsHandlers::healthz},
    {Verb::get, "/readyz", &OpsHandlers::readyz},
    {Verb::get, "/metrics", &OpsHandlers::metrics},
    {Verb::get, "/openapi.yaml", &OpsHandlers::openapi},
};

void append_counter(std::string& out, std::string_view name, std::string_view help,
                    std::uint64_t value, std::string_view type = "counter") {
    out.append("# HELP ").append(name).append(" ").append(help).append("\n");
    out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
    out.append(name).append(" ").append(std::to_string(value)).append("\n");
}

}  // namespace

void OpsHandlers::add_routes(Router& router) {
    for (const auto& route : kOpsRoutes) {
        router.add(route.method, route.pattern,
                   [this, handler = route.handler](const Request& request, const RouteParams& params) {
                       return (this->*handler)(request, params);
                   });
    }
}

std::vector<Router::RouteInfo> OpsHandlers::routes() {
    std::vector<Router::RouteInfo> infos;
    for (const auto& route : kOpsRoutes) infos.push_back({route.method, route.pattern});
    return infos;
}

awaitable<Response> OpsHandlers::healthz(const Request&, const RouteParams&) {
    co_return json_response(200, boost::json::object{{"status", "ok"}});
}

awaitable<Response> OpsHandlers::readyz(const Request&, const RouteParams&) {
    bool all_up = true;
    boost::json::object checks;
    for (const auto& [name, dependency] : sources_.dependencies) {
        bool up = false;
        try {
            up = co_await dependency->ping();
        } catch (const std::exception&) {
            up = false;
        }
        checks[name] = up ? "up" : "down";
        all_up = all_up && up;
    }
    boost::json::object body{{"status", all_up ? "ready" : "unavailable"}, {"checks", checks}};
    try {
        // The relay's lag: events a broker outage keeps in the outbox (they drain when it is back).
        body["outboxUnpublished"] = co_await sources_.outbox.unpublished_count();
    } catch (const std::exception&) {
        // The database is down: its check already says so.
    }
    if (all_up) co_return json_response(200, body);
    auto response = json_response(503, body);
    response.headers.emplace_back("Retry-After", "1");
    co_return response;
}

awaitable<Response> OpsHandlers::metrics(const Request&, const RouteParams&) {
    std::string out = sources_.http_metrics ? sources_.http_metrics->render() : std::string();
    const auto& s = sources_.stats;
    append_counter(out, "concertd_holds_total", "Seat holds that succeeded.", s.holds_succeeded.get());
    append_counter(out, "concertd_holds_rejected_total", "Seat holds refused: seat held or sold.", s.holds_rejected.get());
    append_counter(out, "concertd_hold_retries_total", "Optimistic seat-hold version conflicts retried.", s.hold_retries.get());
    append_counter(out, "concertd_holds_expired_total", "Holds resolved EXPIRED by the sweeper.", s.holds_expired.get());
    append_counter(out, "concertd_charges_total", "Point charges that succeeded.", s.charges_succeeded.get());
    append_counter(out, "concertd_charge_retries_total", "Optimistic charge version conflicts retried.", s.charge_retries.get());
    append_counter(out, "concertd_payments_total", "Payments completed.", s.payments_succeeded.get());
    append_counter(out, "concertd_payments_replayed_total", "Payments answered from an Idempotency-Key.", s.payments_replayed.get());
    append_counter(out, "concertd_payment_retries_total", "Optimistic payment version conflicts retried.", s.payment_retries.get());
    append_counter(out, "concertd_lock_timeouts_total", "Distributed-lock waits that ran out.", s.lock_timeouts.get());
    append_counter(out, "concertd_events_published_total", "Outbox events relayed to the bus.", s.events_published.get());
    append_counter(out, "concertd_events_consumed_total", "Events the sales ledger acted on.", s.events_consumed.get());
    append_counter(out, "concertd_events_dead_lettered_total", "Events a consumer gave up on (Kafka: sent to the dead-letter topic).", s.events_dead_lettered.get());
    append_counter(out, "concertd_cache_hits_total", "Catalog cache hits.", s.cache_hits.get());
    append_counter(out, "concertd_cache_misses_total", "Catalog cache misses.", s.cache_misses.get());
    append_counter(out, "concertd_cache_loads_shared_total",
                   "Catalog cache misses answered by a database load another miss ran.",
                   s.cache_loads_shared.get());
    append_counter(out, "concertd_queue_tokens_issued_total", "Queue tokens issued.", s.tokens_issued.get());
    append_counter(out, "concertd_queue_tokens_admitted_total", "Queue tokens admitted.", s.tokens_admitted.get());
    append_counter(out, "concertd_after_commit_deferred_total", "Cache invalidations and token expiries deferred while their dependency was down.", s.after_commit_deferred.get());
    append_counter(out, "concertd_cache_errors_total", "Cache lookups that failed and read the database.", s.cache_errors.get());
    append_counter(out, "concertd_db_round_trips_total", "Database round trips (PostgreSQL: pipelines; SQLite: jobs on its threads).", s.db_round_trips.get());
    try {
        auto queue = co_await sources_.queue.stats();
        append_counter(out, "concertd_queue_waiting", "Tokens waiting in line.", static_cast<std::uint64_t>(queue.waiting), "gauge");
        append_counter(out, "concertd_queue_active", "Active tokens.", static_cast<std::uint64_t>(queue.active), "gauge");
        auto backlog = co_await sources_.outbox.unpublished_count();
        append_counter(out, "concertd_outbox_unpublished", "Outbox events not yet relayed.", static_cast<std::uint64_t>(backlog), "gauge");
    } catch (const std::exception&) {
        // A dependency down must not hide the counters above.
    }
    co_return Response{200, std::move(out), "text/plain; version=0.0.4; charset=utf-8", {}, {}};
}

awaitable<Response> OpsHandlers::openapi(const Request&, const RouteParams&) {
    co_return Response{200, std::string(generated::kOpenApiYaml), "application/yaml", {}, {}};
}

}  // namespace concertd::http
