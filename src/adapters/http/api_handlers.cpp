#include "adapters/http/api_handlers.hpp"

#include <boost/json.hpp>
#include <chrono>

#include "adapters/http/json_io.hpp"
#include "adapters/http/seat_map_body_cache.hpp"
#include "domain/rules.hpp"
#include "domain/time_format.hpp"

namespace concertd::http {

using namespace concertd::domain;
using boost::asio::awaitable;
namespace json = boost::json;

namespace {

json::object ticket_json(const QueueTicket& ticket) {
    return {{"userId", ticket.user_id},
            {"status", to_string(ticket.status)},
            {"position", ticket.position},
            {"estimatedWaitSeconds", ticket.estimated_wait_seconds}};
}

json::object reservation_json(const Reservation& reservation, TimePoint now) {
    return {{"reservationId", reservation.id},
            {"userId", reservation.user_id},
            {"scheduleId", reservation.schedule_id},
            {"seatNo", reservation.seat_no},
            {"price", reservation.price_won},
            {"status", to_string(reservation.status_at(now))},
            {"expiresAt", format_iso8601(reservation.expires_at)}};
}

json::object balance_json(UserId user, Won balance) {
    return {{"userId", user}, {"balance", balance}};
}

json::object payment_json(const app::PaymentReceipt& receipt) {
    const auto& payment = receipt.payment;
    return {{"paymentId", payment.id},
            {"reservationId", payment.reservation_id},
            {"userId", payment.user_id},
            {"amount", payment.amount_won},
            {"status", "COMPLETED"},
            {"paidAt", format_iso8601(payment.paid_at)}};
}

TimePoint now() { return app::SystemClock().now(); }

std::optional<Response> bad_path_id(std::optional<std::int64_t>& id, std::string_view name) {
    if (id) return std::nullopt;
    return validation_error(std::string(name) + " must be a positive integer");
}

struct HoldBody {
    UserId user = 0;
    ScheduleId schedule = 0;
    SeatNo seat_no = 0;
};

// The ids of a hold, or nullopt with `error` set to the answer.
std::optional<HoldBody> read_hold_body(const Request& request, Response& error) {
    JsonBody body;
    if (auto parse_error = body.parse(request)) {
        error = std::move(*parse_error);
        return std::nullopt;
    }
    auto user = read_positive_id(body.object(), "userId", error);
    if (!user) return std::nullopt;
    auto schedule = read_positive_id(body.object(), "scheduleId", error);
    if (!schedule) return std::nullopt;
    auto seat_no = read_positive_id(body.object(), "seatNo", error);
    if (!seat_no) return std::nullopt;
    if (*seat_no > limits::kSeatsPerScheduleMax) {
        error = refusal_response({Rejection::kNotFound, "no such seat"});
        return std::nullopt;
    }
    return HoldBody{*user, *schedule, static_cast<SeatNo>(*seat_no)};
}

}  // namespace

namespace {

struct ApiRoute {
    Verb method;
    const char* pattern;
    awaitable<Response> (ApiHandlers::*handler)(const Request&, const RouteParams&);
};

constexpr ApiRoute kApiRoutes[] = {
    {Verb::post, "/v1/queue/tokens", &ApiHandlers::issue_token},
    {Verb::get, "/v1/queue/tokens/current", &ApiHandlers::current_token},
    {Verb::get, "/v1/concerts", &ApiHandlers::list_concerts},
    {Verb::get, "/v1/concerts/{concertId}/schedules", &ApiHandlers::list_schedules},
    {Verb::get, "/v1/schedules/{scheduleId}/seats", &ApiHandlers::seat_map},
    {Verb::post, "/v1/reservations", &ApiHandlers::hold_seat},
    {Verb::get, "/v1/reservations/{reservationId}", &ApiHandlers::get_reservation},
    {Verb::post, "/v1/users/{userId}/points/charge", &ApiHandlers::charge_points},
    {Verb::get, "/v1/users/{userId}/points", &ApiHandlers::get_balance},
    {Verb::get, "/v1/users/{userId}/points/history", &ApiHandlers::get_history},
    {Verb::post, "/v1/payments", &ApiHandlers::pay},
    {Verb::post, "/v1/admin/concerts", &ApiHandlers::create_concert},
};

}  // namespace

void ApiHandlers::add_routes(Router& router) {
    for (const auto& route : kApiRoutes) {
        router.add(route.method, route.pattern,
                   [this, handler = route.handler](const Request& request, const RouteParams& params) {
                       return (this->*handler)(request, params);
                   });
    }
}

std::vector<Router::RouteInfo> ApiHandlers::routes() {
    std::vector<Router::RouteInfo> infos;
    for (const auto& route : kApiRoutes) infos.push_back({route.method, route.pattern});
    return infos;
}

awaitable<std::optional<Response>> ApiHandlers::gate(const Request& request,
                                                     std::optional<UserId> user) {
    co_return gate_verdict(co_await services_.queue.current(header(request, "Queue-Token")), user);
}

std::optional<Response> ApiHandlers::gate_verdict(const Result<QueueTicket>& ticket,
                                                  std::optional<UserId> user) {
    if (!ticket) return refusal_response(ticket.refusal());
    if (auto refusal = app::QueueService::check_active(ticket.value(), user)) {
        return refusal_response(*refusal);
    }
    return std::nullopt;
}

awaitable<Response> ApiHandlers::token_refusal_or(std::optional<std::string_view> token,
                                                  Response otherwise) {
    auto ticket = co_await services_.queue.current(token);
    if (!ticket) co_return refusal_response(ticket.refusal());
    co_return otherwise;
}

awaitable<Response> ApiHandlers::issue_token(const Request& request, const RouteParams&) {
    if (auto error = require_json_content_type(request)) co_return *error;
    JsonBody body;
    if (auto error = body.parse(request)) co_return *error;
    Response error;
    auto user = read_positive_id(body.object(), "userId", error);
    if (!user) co_return error;
    auto issued = co_await services_.queue.issue(*user);
    if (!issued) co_return refusal_response(issued.refusal());
    auto out = ticket_json(issued->ticket);
    out.emplace("token", issued->ticket.token);
    co_return json_response(issued->created ? 201 : 200, out);
}

awaitable<Response> ApiHandlers::current_token(const Request& request, const RouteParams&) {
    auto ticket = co_await services_.queue.current(header(request, "Queue-Token"));
    if (!ticket) co_return refusal_response(ticket.refusal());
    co_return json_response(200, ticket_json(ticket.value()));
}

awaitable<Response> ApiHandlers::list_concerts(const Request&, const RouteParams&) {
    auto concerts = co_await services_.catalog.concerts();
    json::array items;
    items.reserve(concerts.size());
    for (const auto& concert : concerts) {
        items.push_back(json::object{{"concertId", concert.id}, {"title", concert.title}});
    }
    co_return json_response(200, json::object{{"concerts", std::move(items)}});
}

// The cached reads name their key before the token check (expect_*), so a Redis cache confirms
// its copy in the token check's call; a bad token is still answered first.
awaitable<Response> ApiHandlers::list_schedules(const Request& request, const RouteParams& params) {
    const auto since = std::chrono::steady_clock::now();
    auto concert = parse_path_id(params.get("concertId"));
    if (concert) co_await services_.catalog.expect_schedules(*concert);
    if (auto denied = co_await gate(request, std::nullopt)) co_return *denied;
    if (auto error = bad_path_id(concert, "concertId")) co_return *error;
    auto found = co_await services_.catalog.schedules(*concert, since);
    if (!found) co_return refusal_response(found.refusal());
    auto at = now();
    json::array items;
    items.reserve(found->schedules.size());
    for (const auto& [date, usage] : found->schedules) {
        items.push_back(json::object{{"scheduleId", date.id},
                                     {"startsAt", format_iso8601(date.starts_at)},
                                     {"availableSeats", usage->available_seats_at(date.total_seats, at)},
                                     {"totalSeats", date.total_seats}});
    }
    co_return json_response(200, json::object{{"concertId", *concert}, {"schedules", std::move(items)}});
}

awaitable<Response> ApiHandlers::seat_map(const Request& request, const RouteParams& params) {
    const auto since = std::chrono::steady_clock::now();
    auto schedule = parse_path_id(params.get("scheduleId"));
    if (schedule) co_await services_.catalog.expect_seat_map(*schedule);
    const auto ticket = co_await services_.queue.current(header(request, "Queue-Token"));
    if (auto denied = gate_verdict(ticket, std::nullopt)) co_return *denied;
    if (auto error = bad_path_id(schedule, "scheduleId")) co_return *error;
    auto map = co_await services_.catalog.seat_map(*schedule, since);
    if (!map) co_return refusal_response(map.refusal());
    co_return Response{200, {}, kJsonContentType, {}, seat_map_body(map.value(), now())};
}

awaitable<Response> ApiHandlers::hold_seat(const Request& request, const RouteParams&) {
    if (auto error = require_json_content_type(request)) co_return *error;
    const auto token = header(request, "Queue-Token");
    Response error;
    auto hold = read_hold_body(request, error);
    if (!hold) co_return co_await token_refusal_or(token, std::move(error));
    auto held = co_await services_.reservations.hold(token, hold->user, hold->schedule, hold->seat_no);
    if (!held) co_return refusal_response(held.refusal());
    co_return json_response(201, reservation_json(held.value(), now()));
}

awaitable<Response> ApiHandlers::get_reservation(const Request&, const RouteParams& params) {
    auto id = parse_path_id(params.get("reservationId"));
    if (auto error = bad_path_id(id, "reservationId")) co_return *error;
    auto found = co_await services_.reservations.find(*id);
    if (!found) co_return refusal_response(found.refusal());
    co_return json_response(200, reservation_json(found.value(), now()));
}

awaitable<Response> ApiHandlers::charge_points(const Request& request, const RouteParams& params) {
    if (auto error = require_json_content_type(request)) co_return *error;
    auto user = parse_path_id(params.get("userId"));
    if (auto error = bad_path_id(user, "userId")) co_return *error;
    JsonBody body;
    if (auto error = body.parse(request)) co_return *error;
    Response error;
    auto amount = read_integer(body.object(), "amount", error);
    if (!amount) co_return error;
    auto balance = co_await services_.wallets.charge(*user, *amount);
    if (!balance) co_return refusal_response(balance.refusal());
    co_return json_response(200, balance_json(*user, balance.value()));
}

awaitable<Response> ApiHandlers::get_balance(const Request&, const RouteParams& params) {
    auto user = parse_path_id(params.get("userId"));
    if (auto error = bad_path_id(user, "userId")) co_return *error;
    auto balance = co_await services_.wallets.balance(*user);
    if (!balance) co_return refusal_response(balance.refusal());
    co_return json_response(200, balance_json(*user, balance.value()));
}

awaitable<Response> ApiHandlers::get_history(const Request& request, const RouteParams& params) {
    auto user = parse_path_id(params.get("userId"));
    if (auto error = bad_path_id(user, "userId")) co_return *error;
    auto limit = parse_history_limit(query_parameter(request.target(), "limit"));
    if (!limit) co_return refusal_response(limit.refusal());
    auto entries = co_await services_.wallets.history(*user, limit.value());
    if (!entries) co_return refusal_response(entries.refusal());
    json::array items;
    items.reserve(entries->size());
    for (const auto& entry : entries.value()) {
        items.push_back(json::object{{"type", to_string(entry.type)},
                                     {"amount", entry.amount_won},
                                     {"balanceAfter", entry.balance_after_won},
                                     {"at", format_iso8601(entry.at)}});
    }
    co_return json_response(200, json::object{{"userId", *user}, {"entries", std::move(items)}});
}

awaitable<Response> ApiHandlers::pay(const Request& request, const RouteParams&) {
    if (auto error = require_json_content_type(request)) co_return *error;
    auto key = header(request, "Idempotency-Key");
    JsonBody body;
    auto body_error = body.parse(request);
    Response error;
    std::optional<std::int64_t> user, reservation;
    if (!body_error) {
        user = read_positive_id(body.object(), "userId", error);
        if (user) reservation = read_positive_id(body.object(), "reservationId", error);
    }
    // A retry of a completed payment: its token was spent by that payment, so the key is
    // looked up before the token gate, and again when the gate finds the token spent (the first
    // request may have committed and expired it in between).
    auto replay = [&]() -> awaitable<std::optional<Response>> {
        if (!key || !user || !reservation) co_return std::nullopt;
        auto replayed = co_await services_.payments.replay(std::string(*key), *user, *reservation);
        if (!replayed) co_return std::nullopt;
        if (!*replayed) co_return refusal_response(replayed->refusal());
        co_return json_response(201, payment_json(replayed->value()));
    };
    if (auto replayed = co_await replay()) co_return *replayed;
    auto ticket = co_await services_.queue.current(header(request, "Queue-Token"));
    if (!ticket) {
        if (ticket.refusal().code == Rejection::kQueueTokenInvalid) {
            if (auto replayed = co_await replay()) co_return *replayed;
        }
        co_return refusal_response(ticket.refusal());
    }
    if (body_error) co_return *body_error;
    if (!user || !reservation) co_return error;
    if (auto refusal = app::QueueService::check_active(ticket.value(), *user)) {
        co_return refusal_response(*refusal);
    }
    std::optional<std::string> idempotency_key;
    if (key) idempotency_key.emplace(*key);
    auto paid = co_await services_.payments.pay(*user, *reservation, std::move(idempotency_key));
    if (!paid) co_return refusal_response(paid.refusal());
    co_return json_response(201, payment_json(paid.value()));
}

awaitable<Response> ApiHandlers::create_concert(const Request& request, const RouteParams&) {
    if (auto refusal = services_.admin.authorize(header(request, "Admin-Key"))) {
        co_return refusal_response(*refusal);
    }
    if (auto error = require_json_content_type(request)) co_return *error;
    JsonBody body;
    if (auto error = body.parse(request)) co_return *error;
    Response error;
    app::NewConcert concert;
    auto title = read_string(body.object(), "title", error);
    if (!title) co_return error;
    concert.title = std::string(*title);
    auto* schedules = body.object().if_contains("schedules");
    if (!schedules || !schedules->is_array()) co_return validation_error("schedules must be an array");
    if (schedules->get_array().size() > limits::kSchedulesPerConcertMax) {
        co_return validation_error("schedules must have 1 to 100 entries");
    }
    for (const auto& item : schedules->get_array()) {
        if (!item.is_object()) co_return validation_error("each schedule must be an object");
        const auto& fields = item.get_object();
        auto starts_at_text = read_string(fields, "startsAt", error);
        if (!starts_at_text) co_return error;
        auto starts_at = parse_iso8601(*starts_at_text);
        if (!starts_at) co_return validation_error("startsAt must be an ISO 8601 time with a zone");
        auto seat_count = read_integer(fields, "seatCount", error);
        if (!seat_count) co_return error;
        auto price = read_integer(fields, "price", error);
        if (!price) co_return error;
        if (*seat_count < 1 || *seat_count > limits::kSeatsPerScheduleMax) {
            co_return validation_error("seatCount must be 1 to 1000");
        }
        concert.schedules.push_back({*starts_at, static_cast<std::int32_t>(*seat_count), *price});
    }
    auto created = co_await services_.admin.create_concert(std::move(concert));
    if (!created) co_return refusal_response(created.refusal());
    json::array ids(created->schedule_ids.begin(), created->schedule_ids.end());
    co_return json_response(201, json::object{{"concertId", created->concert_id},
                                              {"scheduleIds", std::move(ids)}});
}

}  // namespace concertd::http
