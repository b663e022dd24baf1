#include "adapters/http/router.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <stdexcept>
#include <string>
#include <vector>

namespace concertd::http {
namespace {

Handler make_handler() {
    return [](const Request&, const RouteParams&) -> boost::asio::awaitable<Response> {
        co_return Response{};
    };
}

// The routes of SPEC §3, in the order main would add them; the index is what metrics see.
Router spec_router() {
    Router router;
    router.add(Verb::post, "/v1/queue/tokens", make_handler());                      // 0
    router.add(Verb::get, "/v1/queue/tokens/current", make_handler());              // 1
    router.add(Verb::get, "/v1/concerts", make_handler());                          // 2
    router.add(Verb::get, "/v1/concerts/{concertId}/schedules", make_handler());    // 3
    router.add(Verb::get, "/v1/schedules/{scheduleId}/seats", make_handler());      // 4
    router.add(Verb::post, "/v1/reservations", make_handler());                     // 5
    router.add(Verb::get, "/v1/reservations/{reservationId}", make_handler());      // 6
    router.add(Verb::post, "/v1/users/{userId}/points/charge", make_handler());     // 7
    router.add(Verb::get, "/v1/users/{userId}/points", make_handler());             // 8
    router.add(Verb::get, "/v1/users/{userId}/points/history", make_handler());     // 9
    router.add(Verb::post, "/v1/payments", make_handler());                         // 10
    router.add(Verb::post, "/v1/admin/concerts", make_handler());                   // 11
    router.add(Verb::get, "/healthz", make_handler());                              // 12
    router.add(Verb::get, "/metrics", make_handler());                              // 13
    router.add(Verb::get, "/", make_handler());                                     // 14
    router.add(Verb::get, "/a/{x}/b/{y}", make_handler());                          // 15
    return router;
}

using Kind = Router::MatchKind;
using Params = std::vector<std::pair<std::string, std::string>>;

struct MatchCase {
    Verb method;
    std::string path;
    Kind kind;
    std::size_t route_index;  // when found
    Params params;            // when found
};

const std::vector<MatchCase> kMatchCases = {
    // Literal routes.
    {Verb::post, "/v1/queue/tokens", Kind::kFound, 0, {}},
    {Verb::get, "/v1/queue/tokens/current", Kind::kFound, 1, {}},
    {Verb::get, "/v1/concerts", Kind::kFound, 2, {}},
    {Verb::post, "/v1/reservations", Kind::kFound, 5, {}},
    {Verb::get, "/healthz", Kind::kFound, 12, {}},
    {Verb::get, "/", Kind::kFound, 14, {}},
    // Parameters.
    {Verb::get, "/v1/concerts/7/schedules", Kind::kFound, 3, {{"concertId", "7"}}},
    {Verb::get, "/v1/schedules/123456789/seats", Kind::kFound, 4, {{"scheduleId", "123456789"}}},
    {Verb::get, "/v1/reservations/abc", Kind::kFound, 6, {{"reservationId", "abc"}}},
    {Verb::post, "/v1/users/42/points/charge", Kind::kFound, 7, {{"userId", "42"}}},
    {Verb::get, "/v1/users/42/points", Kind::kFound, 8, {{"userId", "42"}}},
    {Verb::get, "/v1/users/42/points/history", Kind::kFound, 9, {{"userId", "42"}}},
    {Verb::get, "/a/1/b/2", Kind::kFound, 15, {{"x", "1"}, {"y", "2"}}},
    {Verb::get, "/v1/reservations/%31", Kind::kFound, 6, {{"reservationId", "%31"}}},  // raw
    // Path exists under another method: 405.
    {Verb::get, "/v1/queue/tokens", Kind::kMethodNotAllowed, 0, {}},
    {Verb::delete_, "/v1/concerts", Kind::kMethodNotAllowed, 0, {}},
    {Verb::get, "/v1/users/42/points/charge", Kind::kMethodNotAllowed, 0, {}},
    {Verb::post, "/v1/users/42/points", Kind::kMethodNotAllowed, 0, {}},
    {Verb::put, "/v1/schedules/1/seats", Kind::kMethodNotAllowed, 0, {}},
    {Verb::unknown, "/healthz", Kind::kMethodNotAllowed, 0, {}},
    {Verb::post, "/", Kind::kMethodNotAllowed, 0, {}},
    // No such path: 404.
    {Verb::get, "/v1/concert", Kind::kNotFound, 0, {}},
    {Verb::get, "/v1/concerts/", Kind::kNotFound, 0, {}},          // trailing slash
    {Verb::get, "/v1//concerts", Kind::kNotFound, 0, {}},          // empty segment
    {Verb::get, "//", Kind::kNotFound, 0, {}},
    {Verb::get, "/v1/concerts//schedules", Kind::kNotFound, 0, {}},  // empty parameter
    {Verb::get, "/v1/concerts/7/schedules/", Kind::kNotFound, 0, {}},
    {Verb::get, "/v1/concerts/7/schedules/x", Kind::kNotFound, 0, {}},
    {Verb::get, "/v1/concerts/7", Kind::kNotFound, 0, {}},
    {Verb::get, "/V1/concerts", Kind::kNotFound, 0, {}},           // case-sensitive
    {Verb::get, "/a/1/b", Kind::kNotFound, 0, {}},
    {Verb::get, "/a/1/b/2/c", Kind::kNotFound, 0, {}},
    {Verb::get, "", Kind::kNotFound, 0, {}},
    {Verb::get, "healthz", Kind::kNotFound, 0, {}},                // no leading slash
    {Verb::get, "*", Kind::kNotFound, 0, {}},
    {Verb::get, "/healthzz", Kind::kNotFound, 0, {}},
};

TEST(RouterTest, MatchTable) {
    const Router router = spec_router();
    for (const auto& c : kMatchCases) {
        SCOPED_TRACE(std::string(boost::beast::http::to_string(c.method)) + " '" + c.path + "'");
        const Router::Match match = router.match(c.method, c.path);
        ASSERT_EQ(match.kind, c.kind);
        if (c.kind != Kind::kFound) {
            EXPECT_EQ(match.handler, nullptr);
            EXPECT_TRUE(match.params.values.empty());
            continue;
        }
        ASSERT_NE(match.handler, nullptr);
        EXPECT_EQ(match.route_index, c.route_index);
        Params params;
        for (const auto& [name, value] : match.params.values) {
            params.emplace_back(std::string(name), std::string(value));
        }
        EXPECT_EQ(params, c.params);
        for (const auto& [name, value] : c.params) {
            EXPECT_EQ(match.params.get(name), value);
        }
    }
}

TEST(RouterTest, ParamsAreViewsIntoThePath) {
    const Router router = spec_router();
    const std::string path = "/v1/schedules/99/seats";
    const auto match = router.match(Verb::get, path);
    ASSERT_EQ(match.kind, Kind::kFound);
    const std::string_view value = *match.params.get("scheduleId");
    EXPECT_EQ(value.data(), path.data() + 14);
    EXPECT_FALSE(match.params.get("nope").has_value());
}

TEST(RouterTest, RoutesKeepInsertionOrderAndFirstMatchWins) {
    Router router;
    router.add(Verb::get, "/items/special", make_handler());
    router.add(Verb::get, "/items/{id}", make_handler());
    ASSERT_EQ(router.routes().size(), 2u);
    EXPECT_EQ(router.routes()[1].pattern, "/items/{id}");
    EXPECT_EQ(router.routes()[1].method, Verb::get);
    EXPECT_EQ(router.match(Verb::get, "/items/special").route_index, 0u);
    EXPECT_EQ(router.match(Verb::get, "/items/other").route_index, 1u);
}

TEST(RouterTest, HandlerPointerIsTheAddedOne) {
    Router router;
    int called = 0;
    router.add(Verb::get, "/x", [&called](const Request&, const RouteParams&)
                                    -> boost::asio::awaitable<Response> {
        ++called;
        co_return Response{};
    });
    const auto match = router.match(Verb::get, "/x");
    ASSERT_NE(match.handler, nullptr);
    boost::asio::io_context ioc;
    const Request request;
    boost::asio::co_spawn(ioc, (*match.handler)(request, match.params), boost::asio::detached);
    ioc.run();
    EXPECT_EQ(called, 1);
}

TEST(RouterTest, RejectsBadPatterns) {
    const std::vector<std::string> bad = {
        "", "v1/x", "/v1/", "/v1//x", "/{}", "/{a", "/a}", "/x{a}", "/{a}x", "/{a{b}}",
        "/{a}/{a}", "/a?b", "/a#b"};
    for (const auto& pattern : bad) {
        Router router;
        EXPECT_THROW(router.add(Verb::get, pattern, make_handler()), std::invalid_argument)
            << pattern;
    }
    Router router;
    EXPECT_THROW(router.add(Verb::get, "/x", Handler{}), std::invalid_argument);
    router.add(Verb::get, "/x/{a}", make_handler());
    EXPECT_THROW(router.add(Verb::get, "/x/{a}", make_handler()), std::invalid_argument);
    EXPECT_NO_THROW(router.add(Verb::post, "/x/{a}", make_handler()));
}

}  // namespace
}  // namespace concertd::http
