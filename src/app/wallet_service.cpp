#include "app/lock_scope.hpp"
#include "app/services.hpp"
#include "domain/rules.hpp"

namespace concertd::app {

Task<Result<Won>> WalletService::charge(UserId user, Won amount) {
    if (!is_valid_id(user)) co_return Refusal{Rejection::kValidationFailed, "userId must be positive"};
    if (amount < limits::kChargeMinWon || amount > limits::kChargeMaxWon) {
        co_return Refusal{Rejection::kValidationFailed, "amount must be between 1 and 1000000"};
    }
    ChargeCommand command{user, amount, ports_.clock.now(), ports_.settings.strategies.point_charge};
    auto charged = command.strategy == Strategy::kDistributed
                       ? co_await run_under_lock<Won>(ports_, wallet_lock_key(user),
                                                      [&](std::uint64_t fence) {
                                                          command.fence = fence;
                                                          return ports_.wallets.charge(command);
                                                      })
                       : co_await ports_.wallets.charge(command);
    if (charged) ports_.stats.charges_succeeded.add();
    co_return charged;
}

Task<Result<Won>> WalletService::balance(UserId user) {
    if (!is_valid_id(user)) co_return Refusal{Rejection::kValidationFailed, "userId must be positive"};
    co_return co_await ports_.wallets.balance(user);
}

Task<Result<std::vector<WalletEntry>>> WalletService::history(UserId user, int limit) {
    if (!is_valid_id(user)) co_return Refusal{Rejection::kValidationFailed, "userId must be positive"};
    assert(limit >= 1 && limit <= limits::kHistoryMax);
    co_return co_await ports_.wallets.history(user, limit);
}

}  // namespace concertd::app
