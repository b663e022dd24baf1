#include "adapters/redis/detail/resp_writer.hpp"

#include <cassert>
#include <charconv>
#include <cstring>
#include <stdexcept>

namespace concertd::redis::detail {

namespace {

std::size_t decimal_digits(std::size_t value) {
    std::size_t digits = 1;
    while (value >= 10) {
        value /= 10;
        ++digits;
    }
    return digits;
}

// "<tag><n>\r\n"
std::size_t header_size(std::size_t n) { return 1 + decimal_digits(n) + 2; }
std::size_t bulk_size(std::string_view part) { return header_size(part.size()) + part.size() + 2; }

// Writes into space already sized by the *_size functions above.
class Cursor {
public:
    explicit Cursor(char* at) : at_(at) {}
    void header(char tag, std::size_t n) {
        *at_++ = tag;
        at_ = std::to_chars(at_, at_ + 20, n).ptr;  // 20 digits hold any size_t
        *at_++ = '\r';
        *at_++ = '\n';
    }
    void bulk(std::string_view part) {
        header('$', part.size());
        if (!part.empty()) std::memcpy(at_, part.data(), part.size());
        at_ += part.size();
        *at_++ = '\r';
        *at_++ = '\n';
    }
    const char* at() const { return at_; }

private:
    char* at_;
};

// Grows `out` by `size` and returns where the new bytes go.
char* extend(std::string& out, std::size_t size) {
    const std::size_t before = out.size();
    out.resize(before + size);
    return out.data() + before;
}

}  // namespace

void append_command(std::string& out, std::span<const std::string_view> parts) {
    if (parts.empty()) throw std::invalid_argument("redis: empty command");
    std::size_t size = header_size(parts.size());
    for (std::string_view part : parts) size += bulk_size(part);
    Cursor cursor(extend(out, size));
    cursor.header('*', parts.size());
    for (std::string_view part : parts) cursor.bulk(part);
    assert(cursor.at() == out.data() + out.size());
}

void append_script_call(std::string& out, std::string_view verb, std::string_view body,
                        std::span<const std::string_view> keys,
                        std::span<const std::string_view> args) {
    char count_digits[20];
    const std::string_view count(
        count_digits, std::to_chars(count_digits, count_digits + 20, keys.size()).ptr);
    const std::size_t parts = 3 + keys.size() + args.size();
    std::size_t size = header_size(parts) + bulk_size(verb) + bulk_size(body) + bulk_size(count);
    for (std::string_view key : keys) size += bulk_size(key);
    for (std::string_view arg : args) size += bulk_size(arg);
    Cursor cursor(extend(out, size));
    cursor.header('*', parts);
    cursor.bulk(verb);
    cursor.bulk(body);
    cursor.bulk(count);
    for (std::string_view key : keys) cursor.bulk(key);
    for (std::string_view arg : args) cursor.bulk(arg);
    assert(cursor.at() == out.data() + out.size());
}

}  // namespace concertd::redis::detail
