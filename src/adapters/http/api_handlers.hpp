// The handlers of SPEC §3's product endpoints: each turns an HTTP request into one use-case
// call, in the check order of docs/api-decisions.md, and the result into JSON.
#pragma once

#include "adapters/http/http_types.hpp"
#include "adapters/http/router.hpp"
#include "app/services.hpp"

namespace concertd::http {

class ApiHandlers {
public:
    explicit ApiHandlers(app::Services& services) : services_(services) {}
    void add_routes(Router& router);
    // The routes add_routes() adds, without needing the services (for --list-routes).
    static std::vector<Router::RouteInfo> routes();

    boost::asio::awaitable<Response> issue_token(const Request& request, const RouteParams& params);
    boost::asio::awaitable<Response> current_token(const Request& request, const RouteParams& params);
    boost::asio::awaitable<Response> list_concerts(const Request& request, const RouteParams& params);
    boost::asio::awaitable<Response> list_schedules(const Request& request, const RouteParams& params);
    boost::asio::awaitable<Response> seat_map(const Request& request, const RouteParams& params);
    boost::asio::awaitable<Response> hold_seat(const Request& request, const RouteParams& params);
    boost::asio::awaitable<Response> get_reservation(const Request& request, const RouteParams& params);
    boost::asio::awaitable<Response> charge_points(const Request& request, const RouteParams& params);
    boost::asio::awaitable<Response> get_balance(const Request& request, const RouteParams& params);
    boost::asio::awaitable<Response> get_history(const Request& request, const RouteParams& params);
    boost::asio::awaitable<Response> pay(const Request& request, const RouteParams& params);
    boost::asio::awaitable<Response> create_concert(const Request& request, const RouteParams& params);

private:
    // The token of the request if it is live and ACTIVE (and `user`'s when given); otherwise
    // the error response.
    boost::asio::awaitable<std::optional<Response>> gate(const Request& request,
                                                         std::optional<domain::UserId> user);
    // gate()'s verdict on a looked-up token, for a handler that looks it up itself (the seat
    // map, the hottest read, saves gate()'s coroutine frame that way).
    static std::optional<Response> gate_verdict(const domain::Result<domain::QueueTicket>& ticket,
                                                std::optional<domain::UserId> user);
    // The token's refusal (missing, unknown, expired) if it has one, else `otherwise`: a bad
    // request answers for its token first.
    boost::asio::awaitable<Response> token_refusal_or(std::optional<std::string_view> token,
                                                      Response otherwise);

    app::Services& services_;
};

}  // namespace concertd::http
