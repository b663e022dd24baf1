#include "app/services.hpp"
#include "domain/rules.hpp"

namespace concertd::app {

Task<Result<IssuedTicket>> QueueService::issue(UserId user) {
    if (!is_valid_id(user)) co_return Refusal{Rejection::kValidationFailed, "userId must be positive"};
    auto issued = co_await ports_.queue.issue(user);
    if (issued.created) ports_.stats.tokens_issued.add();
    co_return issued;
}

Task<Result<QueueTicket>> QueueService::current(std::optional<std::string_view> token) {
    if (!token || token->empty()) {
        co_return Refusal{Rejection::kQueueTokenMissing, "Queue-Token header is required"};
    }
    std::optional<QueueTicket> ticket;
    if (token->size() <= kTokenLengthMax) ticket = co_await ports_.queue.find(std::string(*token));
    if (!ticket) co_return Refusal{Rejection::kQueueTokenInvalid, "queue token is unknown or expired"};
    co_return std::move(*ticket);
}

std::optional<Refusal> QueueService::check_active(const QueueTicket& ticket,
                                                  std::optional<UserId> user) {
    if (user && ticket.user_id != *user) {
        return Refusal{Rejection::kForbidden, "queue token belongs to another user"};
    }
    if (ticket.status != TokenStatus::kActive) {
        return Refusal{Rejection::kQueueNotActive, "still waiting in the queue"};
    }
    return std::nullopt;
}

}  // namespace concertd::app
