#include "app/lock_scope.hpp"
#include "app/services.hpp"
#include "domain/rules.hpp"

namespace concertd::app {

namespace {
std::optional<Refusal> validate(UserId user, ReservationId reservation,
                                const std::optional<std::string>& key) {
    if (!is_valid_id(user) || !is_valid_id(reservation)) {
        return Refusal{Rejection::kValidationFailed, "userId and reservationId must be positive"};
    }
    if (key && !is_valid_idempotency_key(*key)) {
        return Refusal{Rejection::kValidationFailed,
                       "Idempotency-Key must be 1 to 128 printable ASCII characters"};
    }
    return std::nullopt;
}
}  // namespace

Task<Result<PaymentReceipt>> PaymentService::pay(UserId user, ReservationId reservation,
                                                 std::optional<std::string> idempotency_key) {
    if (auto refusal = validate(user, reservation, idempotency_key)) co_return *refusal;
    PayCommand command{user, reservation, std::move(idempotency_key), ports_.clock.now(),
                       ports_.settings.strategies.payment};
    auto paid = command.strategy == Strategy::kDistributed
                    ? co_await run_under_lock<PaymentReceipt>(
                          ports_, wallet_lock_key(user),
                          [&](std::uint64_t fence) {
                              command.fence = fence;
                              return ports_.payments.pay(command);
                          })
                    : co_await ports_.payments.pay(command);
    if (!paid) co_return paid;
    if (paid->replayed) {
        ports_.stats.payments_replayed.add();
        co_return paid;
    }
    ports_.stats.payments_succeeded.add();
    // After the commit: the token is spent, and the sold seat must not be read as held.
    co_await ports_.after_commit.expire_token(user);
    co_await ports_.after_commit.invalidate(paid->reservation.schedule_id);
    co_return paid;
}

Task<std::optional<Result<PaymentReceipt>>> PaymentService::replay(std::string key, UserId user,
                                                                   ReservationId reservation) {
    if (validate(user, reservation, key)) co_return std::nullopt;  // pay() will refuse it
    auto replayed = co_await ports_.payments.replay(std::move(key), user, reservation);
    if (replayed && replayed->ok()) ports_.stats.payments_replayed.add();
    co_return replayed;
}

}  // namespace concertd::app
