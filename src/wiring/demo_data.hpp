// Demo concerts for a first run on an empty database (CONCERTD_DEMO_DATA).
#pragma once

#include "app/ports/storage.hpp"

namespace concertd::wiring {

// Creates the demo concerts unless the database already has concerts. Returns whether it did.
app::Task<bool> seed_demo_data(app::CatalogStore& catalog, domain::TimePoint now);

}  // namespace concertd::wiring
