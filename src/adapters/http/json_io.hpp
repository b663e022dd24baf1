// Reading request bodies and writing responses as SPEC §3 JSON: content type, syntax, and typed
// fields with a clear VALIDATION_FAILED message for each mistake.
#pragma once

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <optional>
#include <string_view>

#include "adapters/http/http_types.hpp"
#include "domain/outcome.hpp"

namespace concertd::http {

// The parsed body of one request, allocated from a buffer on the handler's frame.
class JsonBody {
public:
    // kValidationFailed-style refusals carry their SPEC code in `code`: INVALID_JSON when the
    // text is not JSON, VALIDATION_FAILED when it is not an object.
    std::optional<Response> parse(const Request& request);
    const boost::json::object& object() const { return value_.get_object(); }

private:
    unsigned char buffer_[4096];
    boost::json::monotonic_resource resource_{buffer_, sizeof buffer_};
    boost::json::value value_;
};

// 415 unless the request says application/json (any parameters).
std::optional<Response> require_json_content_type(const Request& request);

// A positive 64-bit integer field; `what` is an error response otherwise.
std::optional<std::int64_t> read_positive_id(const boost::json::object& body, std::string_view name,
                                             Response& error);
// Any 64-bit integer field (range checks are the use case's).
std::optional<std::int64_t> read_integer(const boost::json::object& body, std::string_view name,
                                         Response& error);
std::optional<std::string_view> read_string(const boost::json::object& body, std::string_view name,
                                            Response& error);

// A `{param}` path segment that must be a positive integer.
std::optional<std::int64_t> parse_path_id(std::optional<std::string_view> text);

// The value of `name` in the request target's query string, if present.
std::optional<std::string_view> query_parameter(std::string_view target, std::string_view name);

std::optional<std::string_view> header(const Request& request, std::string_view name);

Response json_response(unsigned status, const boost::json::value& body);
Response refusal_response(const domain::Refusal& refusal);
Response validation_error(std::string_view message);

}  // namespace concertd::http
