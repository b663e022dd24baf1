#include "adapters/http/error_mapping.hpp"

namespace concertd::http {

std::pair<unsigned, std::string_view> http_status_of(domain::Rejection rejection) {
    using domain::Rejection;
    switch (rejection) {
        case Rejection::kValidationFailed: return {400, "VALIDATION_FAILED"};
        case Rejection::kQueueTokenMissing: return {401, "QUEUE_TOKEN_MISSING"};
        case Rejection::kQueueTokenInvalid: return {401, "QUEUE_TOKEN_INVALID"};
        case Rejection::kAdminKeyInvalid: return {401, "ADMIN_KEY_INVALID"};
        case Rejection::kQueueNotActive: return {403, "QUEUE_NOT_ACTIVE"};
        case Rejection::kForbidden: return {403, "FORBIDDEN"};
        case Rejection::kNotFound: return {404, "NOT_FOUND"};
        case Rejection::kSeatUnavailable: return {409, "SEAT_UNAVAILABLE"};
        case Rejection::kReservationExpired: return {409, "RESERVATION_EXPIRED"};
        case Rejection::kReservationNotPayable: return {409, "RESERVATION_NOT_PAYABLE"};
        case Rejection::kInsufficientBalance: return {409, "INSUFFICIENT_BALANCE"};
        case Rejection::kBalanceLimitExceeded: return {409, "BALANCE_LIMIT_EXCEEDED"};
        case Rejection::kIdempotencyConflict: return {409, "IDEMPOTENCY_CONFLICT"};
        case Rejection::kRateLimited: return {429, "RATE_LIMITED"};
    }
    return {400, "VALIDATION_FAILED"};
}

}  // namespace concertd::http
