// What the server, the router and the handlers share: a parsed request, a response to write,
// and a handler's signature.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace concertd::http {

namespace beast_http = boost::beast::http;
using Request = beast_http::request<beast_http::string_body>;
using Verb = beast_http::verb;

inline constexpr std::string_view kJsonContentType = "application/json; charset=utf-8";

struct Response {
    unsigned status = 200;
    std::string body;
    std::string_view content_type = kJsonContentType;
    std::vector<std::pair<std::string, std::string>> headers;  // extra ones, e.g. Retry-After
    // When set, the body sent instead of `body`: bytes kept elsewhere (a cached seat map),
    // shared rather than copied into every answer.
    std::shared_ptr<const std::string> shared_body;

    std::string_view body_bytes() const { return shared_body ? *shared_body : body; }
};

// Values of the `{name}` segments of the matched route pattern, in order.
struct RouteParams {
    std::vector<std::pair<std::string_view, std::string_view>> values;
    std::optional<std::string_view> get(std::string_view name) const {
        for (const auto& [key, value] : values) {
            if (key == name) return value;
        }
        return std::nullopt;
    }
};

using Handler = std::function<boost::asio::awaitable<Response>(const Request&, const RouteParams&)>;

// Builds the SPEC §3 error body: {"error":{"code":"...","message":"..."}}.
Response error_response(unsigned status, std::string_view code, std::string_view message);

}  // namespace concertd::http
