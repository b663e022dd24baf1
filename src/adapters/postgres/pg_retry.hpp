// Retries for the PostgreSQL stores (adapters/conflict_retry.hpp): a transaction runs again
// after a deadlock (40P01) or a serialization failure (40001).
#pragma once

#include "adapters/conflict_retry.hpp"
#include "adapters/postgres/detail/pg_connection.hpp"

namespace concertd::postgres {

using adapters::jitter_pause;
using adapters::kConflictAttemptsMax;
using adapters::kOptimisticAttemptsMax;

template <class Transaction>
auto retrying_conflicts(Transaction transaction) -> decltype(transaction()) {
    return adapters::retrying_conflicts<detail::PgError>(std::move(transaction));
}

}  // namespace concertd::postgres
