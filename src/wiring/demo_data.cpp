#include "wiring/demo_data.hpp"

namespace concertd::wiring {

app::Task<bool> seed_demo_data(app::CatalogStore& catalog, domain::TimePoint now) {
    if (co_await catalog.has_concerts()) co_return false;
    using std::chrono::days;
    using std::chrono::hours;
    // Evenings at 19:00 UTC, one, two and three weeks out.
    auto evening = std::chrono::floor<days>(now) + hours(19);
    app::NewConcert first{"IU HEREH World Tour — Seoul",
                          {{evening + days(7), 50, 150'000},
                           {evening + days(14), 50, 150'000},
                           {evening + days(21), 50, 150'000}}};
    app::NewConcert second{"Seoul Philharmonic — Mahler 2", {{evening + days(10), 50, 80'000}}};
    co_await catalog.create_concert(std::move(first), now);
    co_await catalog.create_concert(std::move(second), now);
    co_return true;
}

}  // namespace concertd::wiring
