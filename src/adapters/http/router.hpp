// Maps (method, path) to a handler. Patterns are literal segments and `{name}` segments, e.g.
// "/v1/schedules/{scheduleId}/seats". A path that matches a pattern under another method is
// 405; one that matches nothing is 404.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "adapters/http/http_types.hpp"

namespace concertd::http {

class Router {
public:
    // `name` labels the route in /metrics (e.g. "POST /v1/reservations").
    void add(Verb method, std::string pattern, Handler handler);

    enum class MatchKind { kFound, kNotFound, kMethodNotAllowed };
    struct Match {
        MatchKind kind = MatchKind::kNotFound;
        const Handler* handler = nullptr;
        std::size_t route_index = 0;  // stable index for per-route metrics
        RouteParams params;           // views into the path passed to match()
    };
    // `path` without the query string.
    Match match(Verb method, std::string_view path) const;

    struct RouteInfo {
        Verb method;
        std::string pattern;
    };
    const std::vector<RouteInfo>& routes() const { return infos_; }

private:
    struct Route {
        Verb method;
        std::vector<std::string> segments;  // "{name}" marks a parameter
        Handler handler;
    };
    std::vector<Route> routes_;
    std::vector<RouteInfo> infos_;
};

}  // namespace concertd::http
