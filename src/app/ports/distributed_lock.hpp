// The lock port of the `distributed` strategy: a named lock held around a database transaction.
// Implementations: in-process, Redis (lease + fencing token), database advisory locks.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace concertd::app {

struct LockLease {
    std::string key;
    std::string owner;
    std::uint64_t fence = 0;  // grows with every grant of the key
};

class DistributedLock {
public:
    virtual ~DistributedLock() = default;
    // Waits at most `wait` for the lock; nullopt when the wait runs out.
    virtual boost::asio::awaitable<std::optional<LockLease>> acquire(
        std::string key, std::chrono::milliseconds wait) = 0;
    // Releases the lock if `lease` still owns it.
    virtual boost::asio::awaitable<void> release(LockLease lease) = 0;
};

}  // namespace concertd::app
