#include "app/strategy.hpp"

namespace concertd::app {

std::string_view to_string(Strategy strategy) {
    switch (strategy) {
        case Strategy::kPessimistic: return "pessimistic";
        case Strategy::kOptimistic: return "optimistic";
        case Strategy::kDistributed: return "distributed";
        case Strategy::kAtomic: return "atomic";
    }
    return "optimistic";
}

std::optional<Strategy> parse_strategy(std::string_view text) {
    if (text == "pessimistic") return Strategy::kPessimistic;
    if (text == "optimistic") return Strategy::kOptimistic;
    if (text == "distributed") return Strategy::kDistributed;
    if (text == "atomic") return Strategy::kAtomic;
    return std::nullopt;
}

}  // namespace concertd::app
