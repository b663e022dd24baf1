#include "domain/time_format.hpp"

#include <charconv>
#include <cstdio>

namespace concertd::domain {

std::string format_iso8601(TimePoint at) {
    using namespace std::chrono;
    auto days = floor<std::chrono::days>(at);
    year_month_day ymd{days};
    hh_mm_ss hms{at - days};
    char buffer[40];
    int ms = static_cast<int>(hms.subseconds().count());
    int n;
    if (ms != 0) {
        n = std::snprintf(buffer, sizeof buffer, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ",
                          static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                          static_cast<unsigned>(ymd.day()), static_cast<int>(hms.hours().count()),
                          static_cast<int>(hms.minutes().count()),
                          static_cast<int>(hms.seconds().count()), ms);
    } else {
        n = std::snprintf(buffer, sizeof buffer, "%04d-%02u-%02uT%02d:%02d:%02dZ",
                          static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                          static_cast<unsigned>(ymd.day()), static_cast<int>(hms.hours().count()),
                          static_cast<int>(hms.minutes().count()),
                          static_cast<int>(hms.seconds().count()));
    }
    return std::string(buffer, static_cast<std::size_t>(n));
}

namespace {

bool read_digits(std::string_view text, std::size_t pos, std::size_t count, int& out) {
    if (pos + count > text.size()) return false;
    out = 0;
    for (std::size_t i = pos; i < pos + count; ++i) {
        if (text[i] < '0' || text[i] > '9') return false;
        out = out * 10 + (text[i] - '0');
    }
    return true;
}

}  // namespace

std::optional<TimePoint> parse_iso8601(std::string_view text) {
    using namespace std::chrono;
    int y, mo, d, h, mi, s;
    if (text.size() < 20 || text[4] != '-' || text[7] != '-' || (text[10] != 'T') ||
        text[13] != ':' || text[16] != ':') {
        return std::nullopt;
    }
    if (!read_digits(text, 0, 4, y) || !read_digits(text, 5, 2, mo) ||
        !read_digits(text, 8, 2, d) || !read_digits(text, 11, 2, h) ||
        !read_digits(text, 14, 2, mi) || !read_digits(text, 17, 2, s)) {
        return std::nullopt;
    }
    std::size_t pos = 19;
    int ms = 0;
    if (pos < text.size() && text[pos] == '.') {
        std::size_t start = ++pos;
        while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
        std::size_t digits = pos - start;
        if (digits == 0 || digits > 9) return std::nullopt;
        int frac = 0;
        read_digits(text, start, digits < 3 ? digits : 3, frac);
        for (std::size_t i = digits; i < 3; ++i) frac *= 10;
        ms = frac;
    }
    int offset_minutes = 0;
    if (pos < text.size() && text[pos] == 'Z' && pos + 1 == text.size()) {
        offset_minutes = 0;
    } else if (pos + 6 == text.size() && (text[pos] == '+' || text[pos] == '-') &&
               text[pos + 3] == ':') {
        int oh, om;
        if (!read_digits(text, pos + 1, 2, oh) || !read_digits(text, pos + 4, 2, om) || oh > 23 ||
            om > 59) {
            return std::nullopt;
        }
        offset_minutes = (oh * 60 + om) * (text[pos] == '+' ? 1 : -1);
    } else {
        return std::nullopt;
    }
    if (y < 1970 || y > 9999 || h > 23 || mi > 59 || s > 59) return std::nullopt;
    year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
    if (!ymd.ok()) return std::nullopt;
    auto at = sys_days{ymd} + hours{h} + minutes{mi} + seconds{s} + milliseconds{ms} -
              minutes{offset_minutes};
    return time_point_cast<milliseconds>(at);
}

}  // namespace concertd::domain
