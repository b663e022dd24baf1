// The one table from business outcomes to SPEC §3 status and code.
#pragma once

#include <string_view>
#include <utility>

#include "domain/outcome.hpp"

namespace concertd::http {

std::pair<unsigned, std::string_view> http_status_of(domain::Rejection rejection);

}  // namespace concertd::http
