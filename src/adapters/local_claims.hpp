// The keys a lock (PostgreSQL or MySQL advisory locks, the Redis lock) holds, or is asking its
// server for, in this process. A waiter whose key is claimed here waits without asking too:
// however many local waiters a key has, at most one try of it is in flight per process, so a
// crowd on a few keys neither queues on the lock's connection pool nor polls Redis.
#pragma once

#include <mutex>
#include <optional>
#include <string>
#include <unordered_set>
#include <utility>

namespace concertd::adapters {

class LocalClaims {
public:
    // A claim on one key: dropped when it goes out of scope (the try was refused, or threw),
    // unless kept (the lock was granted). A release takes the kept key back with a Claim of
    // its own, which drops it once the database has unlocked.
    class Claim {
    public:
        Claim(LocalClaims& claims, std::string key) : claims_(&claims), key_(std::move(key)) {}
        Claim(Claim&& other) noexcept
            : claims_(std::exchange(other.claims_, nullptr)), key_(std::move(other.key_)) {}
        Claim& operator=(Claim&&) = delete;
        ~Claim() {
            if (claims_) claims_->drop(key_);
        }
        void keep() { claims_ = nullptr; }

    private:
        LocalClaims* claims_;
        std::string key_;
    };

    // A claim on `key`, or nullopt when this process holds or tries it already.
    std::optional<Claim> claim(const std::string& key) {
        std::lock_guard lock(mutex_);
        if (!keys_.insert(key).second) return std::nullopt;
        return std::optional<Claim>(std::in_place, *this, key);
    }
    void drop(const std::string& key) {
        std::lock_guard lock(mutex_);
        keys_.erase(key);
    }

private:
    std::mutex mutex_;  // never held across a co_await
    std::unordered_set<std::string> keys_;
};

}  // namespace concertd::adapters
