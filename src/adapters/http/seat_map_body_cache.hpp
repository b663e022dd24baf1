// Rendered seat-map bodies, kept per I/O thread: a cached read serves the same bytes again
// instead of rendering ~2.4 KB of JSON (~25k instructions, a fifth of a cached read on
// PostgreSQL + Redis; docs/performance.md, D1).
//
// Exactness: a body is reused only for the very SeatMap object it was rendered from (compared
// by ownership, not address, so a newer map at a reused address never matches) and only while
// `now` stays between the two hold expiries around its render time, where every seat's
// status_at(now) is unchanged. So it is byte for byte render_seat_map(*map, now). The object is
// const and the catalog caches hand out one object per version: a new version or a new load is
// a new object (CatalogService::seat_map, MemoryCatalogCache, RedisCatalogCache's local layer).
// A map that only the caller holds (no cache, e.g. PostgreSQL alone) can never come back: it is
// rendered and not kept.
#pragma once

#include <memory>
#include <string>

#include "domain/types.hpp"

namespace concertd::http {

// render_seat_map(*map, now), from this thread's cache when it can (shared, not copied: the
// answer holds it while it is written). `map` is not null; the result never is.
std::shared_ptr<const std::string> seat_map_body(const std::shared_ptr<const domain::SeatMap>& map,
                                                 domain::TimePoint now);

}  // namespace concertd::http
