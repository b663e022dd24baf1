// Time is injected so tests control it; the production clock is the system's.
#pragma once

#include "domain/types.hpp"

namespace concertd::app {

class ClockPort {
public:
    virtual ~ClockPort() = default;
    virtual domain::TimePoint now() const = 0;
};

class SystemClock final : public ClockPort {
public:
    domain::TimePoint now() const override {
        return std::chrono::time_point_cast<std::chrono::milliseconds>(domain::Clock::now());
    }
};

}  // namespace concertd::app
