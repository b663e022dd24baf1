#include "adapters/http/json_io.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <charconv>

#include "adapters/http/error_mapping.hpp"

namespace concertd::http {

std::optional<Response> require_json_content_type(const Request& request) {
    auto type = header(request, "Content-Type").value_or("");
    auto media = type.substr(0, type.find(';'));
    while (!media.empty() && media.back() == ' ') media.remove_suffix(1);
    if (media.size() == 16 && strncasecmp(media.data(), "application/json", 16) == 0) {
        return std::nullopt;
    }
    return error_response(415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type must be application/json");
}

std::optional<Response> JsonBody::parse(const Request& request) {
    boost::system::error_code ec;
    value_ = boost::json::parse(request.body(), ec, &resource_);
    if (ec) return error_response(400, "INVALID_JSON", "request body is not valid JSON");
    if (!value_.is_object()) return validation_error("request body must be a JSON object");
    return std::nullopt;
}

std::optional<std::int64_t> read_integer(const boost::json::object& body, std::string_view name,
                                         Response& error) {
    auto* field = body.if_contains(name);
    if (!field) {
        error = validation_error(std::string(name) + " is required");
        return std::nullopt;
    }
    if (field->is_int64()) return field->get_int64();
    error = validation_error(std::string(name) + " must be an integer");
    return std::nullopt;
}

std::optional<std::int64_t> read_positive_id(const boost::json::object& body, std::string_view name,
                                             Response& error) {
    auto value = read_integer(body, name, error);
    if (value && *value <= 0) {
        error = validation_error(std::string(name) + " must be a positive integer");
        return std::nullopt;
    }
    return value;
}

std::optional<std::string_view> read_string(const boost::json::object& body, std::string_view name,
                                            Response& error) {
    auto* field = body.if_contains(name);
    if (!field || !field->is_string()) {
        error = validation_error(std::string(name) + " must be a string");
        return std::nullopt;
    }
    return std::string_view(field->get_string());
}

std::optional<std::int64_t> parse_path_id(std::optional<std::string_view> text) {
    if (!text || text->empty()) return std::nullopt;
    std::int64_t value = 0;
    auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
    if (ec != std::errc{} || end != text->data() + text->size() || value <= 0) return std::nullopt;
    return value;
}

std::optional<std::string_view> query_parameter(std::string_view target, std::string_view name) {
    auto question = target.find('?');
    if (question == std::string_view::npos) return std::nullopt;
    auto query = target.substr(question + 1);
    while (!query.empty()) {
        auto amp = query.find('&');
        auto pair = query.substr(0, amp);
        auto eq = pair.find('=');
        if (pair.substr(0, eq) == name) {
            return eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
        }
        if (amp == std::string_view::npos) break;
        query.remove_prefix(amp + 1);
    }
    return std::nullopt;
}

std::optional<std::string_view> header(const Request& request, std::string_view name) {
    auto found = request.find(name);
    if (found == request.end()) return std::nullopt;
    return std::string_view(found->value().data(), found->value().size());
}

Response json_response(unsigned status, const boost::json::value& body) {
    return Response{status, boost::json::serialize(body), kJsonContentType, {}, {}};
}

Response refusal_response(const domain::Refusal& refusal) {
    auto [status, code] = http_status_of(refusal.code);
    auto response = error_response(status, code, refusal.message);
    if (refusal.code == domain::Rejection::kRateLimited) response.headers.emplace_back("Retry-After", "1");
    return response;
}

Response validation_error(std::string_view message) {
    return error_response(400, "VALIDATION_FAILED", message);
}

}  // namespace concertd::http
