// Business outcomes are values, not exceptions (STYLE.md §4). The HTTP adapter maps each code
// to SPEC §3 in one table.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace concertd::domain {

enum class Rejection {
    kValidationFailed,
    kNotFound,
    kQueueTokenMissing,
    kQueueTokenInvalid,
    kQueueNotActive,
    kForbidden,
    kAdminKeyInvalid,
    kSeatUnavailable,
    kReservationExpired,
    kReservationNotPayable,
    kInsufficientBalance,
    kBalanceLimitExceeded,
    kIdempotencyConflict,
    kRateLimited,
};

struct Refusal {
    Rejection code;
    std::string message;
};

// The result of a use case: a value or a refusal with a human-readable reason.
template <class T>
class Result {
public:
    Result(T value) : state_(std::move(value)) {}  // NOLINT: implicit by design
    Result(Refusal refusal) : state_(std::move(refusal)) {}  // NOLINT
    Result(Rejection code, std::string message) : state_(Refusal{code, std::move(message)}) {}

    bool ok() const { return state_.index() == 0; }
    explicit operator bool() const { return ok(); }

    const T& value() const& { assert(ok()); return std::get<0>(state_); }
    T& value() & { assert(ok()); return std::get<0>(state_); }
    T&& value() && { assert(ok()); return std::get<0>(std::move(state_)); }
    const T* operator->() const { return &value(); }

    const Refusal& refusal() const { assert(!ok()); return std::get<1>(state_); }

private:
    std::variant<T, Refusal> state_;
};

// Infrastructure failure (database, Redis, broker unreachable): becomes 503 with Retry-After.
class DependencyUnavailable : public std::exception {
public:
    explicit DependencyUnavailable(std::string what) : what_(std::move(what)) {}
    const char* what() const noexcept override { return what_.c_str(); }

private:
    std::string what_;
};

}  // namespace concertd::domain
