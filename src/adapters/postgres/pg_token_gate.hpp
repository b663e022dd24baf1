// The queue-token gate a hold runs inside its own first round trip when the waiting queue is this
// database's `queue_tokens` table (no Redis): one more statement in a pipeline the hold sends
// anyway, instead of a round trip of its own (docs/postgres.md, "Round trips").
#pragma once

#include <optional>
#include <string>

#include "adapters/postgres/detail/pg_connection.hpp"
#include "domain/outcome.hpp"
#include "domain/types.hpp"

namespace concertd::postgres {

// $1 token: one row when the token exists, its user and whether it is ACTIVE and unexpired by
// the database's clock (the clock every process shares).
detail::PgStatement token_gate_statement(const std::string& token);

// The answer for `user`: nullopt when the token is that user's live ACTIVE token; kForbidden
// when it is another user's; kQueueTokenInvalid when there is no such token; kQueueNotActive
// when it exists but is not a live ACTIVE token (waiting, dropped or expired: the caller asks the
// queue itself for the exact answer, which also counts a waiting token's poll).
std::optional<domain::Refusal> judge_token_gate(const detail::PgResult& result,
                                                domain::UserId user);

}  // namespace concertd::postgres
