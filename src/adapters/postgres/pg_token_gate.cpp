#include "adapters/postgres/pg_token_gate.hpp"

namespace concertd::postgres {

detail::PgStatement token_gate_statement(const std::string& token) {
    return {"SELECT user_id, status = 'ACTIVE' AND expires_at > now_ms()"
            " FROM queue_tokens WHERE token = $1",
            {detail::param(token)}};
}

std::optional<domain::Refusal> judge_token_gate(const detail::PgResult& result,
                                                domain::UserId user) {
    using domain::Refusal;
    using domain::Rejection;
    if (result.rows() == 0) {
        return Refusal{Rejection::kQueueTokenInvalid, "queue token is unknown or expired"};
    }
    if (!result.boolean(0, 1)) return Refusal{Rejection::kQueueNotActive, "queue token is not active"};
    if (result.int64(0, 0) != user) {
        return Refusal{Rejection::kForbidden, "queue token belongs to another user"};
    }
    return std::nullopt;
}

}  // namespace concertd::postgres
