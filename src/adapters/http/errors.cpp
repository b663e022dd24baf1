#include <boost/json/serialize.hpp>
#include <cstdint>
#include <string>
#include <string_view>

#include "adapters/http/http_types.hpp"

namespace concertd::http {
namespace {

constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD";  // U+FFFD

// Length of the well-formed UTF-8 sequence at the front of `s`, or 0 if it is not one
// (overlong forms, surrogates and code points past U+10FFFF included, per RFC 3629).
std::size_t utf8_sequence_length(std::string_view s) {
    const auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(s[i]); };
    const std::uint8_t lead = byte(0);
    if (lead < 0x80) return 1;
    std::size_t length = 0;
    std::uint8_t low = 0x80;
    std::uint8_t high = 0xBF;  // allowed range of the second byte
    if (lead >= 0xC2 && lead <= 0xDF) {
        length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        length = 3;
        if (lead == 0xE0) low = 0xA0;
        if (lead == 0xED) high = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        length = 4;
        if (lead == 0xF0) low = 0x90;
        if (lead == 0xF4) high = 0x8F;
    } else {
        return 0;
    }
    if (s.size() < length) return 0;
    if (byte(1) < low || byte(1) > high) return 0;
    for (std::size_t i = 2; i < length; ++i) {
        if ((byte(i) & 0xC0) != 0x80) return 0;
    }
    return length;
}

// Messages may quote client input; a JSON document must be valid UTF-8, and Boost.JSON's
// serializer passes bytes through unchecked. Copies only when something needs replacing.
std::string_view valid_utf8(std::string_view text, std::string& storage) {
    std::size_t i = 0;
    while (i < text.size()) {
        const std::size_t n = utf8_sequence_length(text.substr(i));
        if (n == 0) break;
        i += n;
    }
    if (i == text.size()) return text;
    storage.assign(text.substr(0, i));
    while (i < text.size()) {
        const std::size_t n = utf8_sequence_length(text.substr(i));
        if (n == 0) {
            storage.append(kReplacementCharacter);
            ++i;
        } else {
            storage.append(text.substr(i, n));
            i += n;
        }
    }
    return storage;
}

}  // namespace

Response error_response(unsigned status, std::string_view code, std::string_view message) {
    std::string code_storage;
    std::string message_storage;
    // boost::json::serialize(string_view) gives a quoted, escaped JSON string.
    const std::string code_json = boost::json::serialize(valid_utf8(code, code_storage));
    const std::string message_json = boost::json::serialize(valid_utf8(message, message_storage));

    Response response;
    response.status = status;
    response.body.reserve(32 + code_json.size() + message_json.size());
    response.body.append(R"({"error":{"code":)");
    response.body.append(code_json);
    response.body.append(R"(,"message":)");
    response.body.append(message_json);
    response.body.append("}}");
    return response;
}

}  // namespace concertd::http
