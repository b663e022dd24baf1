#include "adapters/http/router.hpp"

#include <algorithm>
#include <stdexcept>

namespace concertd::http {
namespace {

bool is_param(std::string_view segment) {
    return segment.size() >= 2 && segment.front() == '{' && segment.back() == '}';
}

// Splits a pattern into segments, refusing what could never match or would be ambiguous: routes
// are set up once at start, so a bad one is a programming error worth failing loudly for.
std::vector<std::string> split_pattern(const std::string& pattern) {
    if (pattern.empty() || pattern.front() != '/') {
        throw std::invalid_argument("route pattern must start with '/': " + pattern);
    }
    std::vector<std::string> segments;
    if (pattern == "/") return segments;  // the root: zero segments
    std::string_view rest = std::string_view(pattern).substr(1);
    for (;;) {
        const auto slash = rest.find('/');
        const std::string_view segment = rest.substr(0, slash);
        if (segment.empty()) {
            throw std::invalid_argument("route pattern has an empty segment or trailing '/': " +
                                        pattern);
        }
        if (segment.find_first_of("?#") != std::string_view::npos) {
            throw std::invalid_argument("route pattern may not hold '?' or '#': " + pattern);
        }
        const bool braces = segment.find_first_of("{}") != std::string_view::npos;
        if (braces) {
            const std::string_view name = segment.substr(1, segment.size() - 2);
            if (!is_param(segment) || name.empty() ||
                name.find_first_of("{}") != std::string_view::npos) {
                throw std::invalid_argument("route parameter must be a whole '{name}' segment: " +
                                            pattern);
            }
            for (const auto& earlier : segments) {
                if (earlier == segment) {
                    throw std::invalid_argument("route parameter named twice: " + pattern);
                }
            }
        }
        segments.emplace_back(segment);
        if (slash == std::string_view::npos) break;
        rest.remove_prefix(slash + 1);
    }
    return segments;
}

// Walks `path` against the segments without splitting it into a container. Parameter values are
// appended to `params` when given (views into `path`).
bool match_path(const std::vector<std::string>& segments, std::string_view path,
                RouteParams* params) {
    if (path.empty() || path.front() != '/') return false;
    if (segments.empty()) return path.size() == 1;
    std::string_view rest = path.substr(1);
    bool consumed = false;  // true once the last path segment has been taken
    for (const auto& pattern_segment : segments) {
        if (consumed) return false;  // path shorter than the pattern
        const auto slash = rest.find('/');
        const std::string_view segment = rest.substr(0, slash);
        if (segment.empty()) return false;  // "//" or a trailing '/'
        if (is_param(pattern_segment)) {
            if (params != nullptr) {
                const std::string_view name =
                    std::string_view(pattern_segment).substr(1, pattern_segment.size() - 2);
                params->values.emplace_back(name, segment);
            }
        } else if (segment != pattern_segment) {
            return false;
        }
        if (slash == std::string_view::npos) {
            consumed = true;
        } else {
            rest.remove_prefix(slash + 1);
        }
    }
    return consumed;  // not consumed: the path is longer, or ends in '/'
}

}  // namespace

void Router::add(Verb method, std::string pattern, Handler handler) {
    if (!handler) throw std::invalid_argument("route without a handler: " + pattern);
    auto segments = split_pattern(pattern);
    for (const auto& route : routes_) {
        if (route.method == method && route.segments == segments) {
            throw std::invalid_argument("route added twice: " + pattern);
        }
    }
    routes_.push_back(Route{method, std::move(segments), std::move(handler)});
    infos_.push_back(RouteInfo{method, std::move(pattern)});
}

Router::Match Router::match(Verb method, std::string_view path) const {
    Match result;
    bool path_known = false;  // some route under another method has this path → 405, not 404
    for (std::size_t i = 0; i < routes_.size(); ++i) {
        const Route& route = routes_[i];
        if (route.method == method) {
            result.params.values.clear();  // keeps the capacity of a failed candidate
            if (match_path(route.segments, path, &result.params)) {
                result.kind = MatchKind::kFound;
                result.handler = &route.handler;
                result.route_index = i;
                return result;
            }
        } else if (!path_known && match_path(route.segments, path, nullptr)) {
            path_known = true;
        }
    }
    result.params.values.clear();
    result.kind = path_known ? MatchKind::kMethodNotAllowed : MatchKind::kNotFound;
    return result;
}

}  // namespace concertd::http
