// The waiting-queue port (SPEC §2 "Queue token"): FIFO admission at a rate, TTLs, tokens bound
// to their user. Implementations: in-process (memory), Redis, a database table.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <optional>
#include <string>

#include "domain/types.hpp"

namespace concertd::app {

struct QueueSettings {
    std::int64_t admit_per_second = 100;
    std::int64_t max_active = 1000;
    std::int64_t active_ttl_seconds = 600;
    std::int64_t waiting_ttl_seconds = 60;
};

struct IssuedTicket {
    domain::QueueTicket ticket;
    bool created = false;  // false: the user's live token was returned again
};

struct QueueStats {
    std::int64_t waiting = 0;
    std::int64_t active = 0;
};

class WaitingQueue {
public:
    virtual ~WaitingQueue() = default;
    // The user's live token, or a new WAITING one at the end of the line.
    virtual boost::asio::awaitable<IssuedTicket> issue(domain::UserId user) = 0;
    // The token's state; a look counts as a poll (keeps a waiting token in line).
    // nullopt when unknown, forged, dropped or expired.
    virtual boost::asio::awaitable<std::optional<domain::QueueTicket>> find(std::string token) = 0;
    // Ends the user's token (after payment).
    virtual boost::asio::awaitable<void> expire_user(domain::UserId user) = 0;
    // Admits from the head of the line as the rate and max_active allow, drops waiting tokens
    // not polled within waiting_ttl, expires active tokens past active_ttl. Returns admitted.
    virtual boost::asio::awaitable<std::int64_t> admit(domain::TimePoint now) = 0;
    virtual boost::asio::awaitable<QueueStats> stats() = 0;
};

}  // namespace concertd::app
