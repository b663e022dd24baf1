// The concurrency-control strategies of SPEC §4, chosen per operation in configuration.
#pragma once

#include <optional>
#include <string_view>

namespace concertd::app {

enum class Strategy { kPessimistic, kOptimistic, kDistributed, kAtomic };

std::string_view to_string(Strategy strategy);
std::optional<Strategy> parse_strategy(std::string_view text);

struct StrategyChoice {
    Strategy seat_hold = Strategy::kOptimistic;
    Strategy point_charge = Strategy::kDistributed;  // never kAtomic
    Strategy payment = Strategy::kDistributed;       // never kAtomic
};

}  // namespace concertd::app
