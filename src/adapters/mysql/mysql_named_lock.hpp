// What the MariaDB/MySQL adapters that take GET_LOCK() named locks share: lock names that fit
// MySQL 8's 64 characters, the release statement, and a guard that never lets a pooled connection
// go back to the pool while its session may still hold a named lock.
//
// A GET_LOCK lock belongs to the session, not to a transaction: the pool's "dropped when given
// back inside a transaction" does not cover it, and COMMIT or ROLLBACK does not free it. It is
// freed by RELEASE_LOCK / RELEASE_ALL_LOCKS or when the session ends (the connection is closed,
// or dies).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "adapters/mysql/mysql_pool.hpp"

namespace concertd::mysql {

// MySQL 8 refuses longer names (ER_USER_LOCK_WRONG_NAME); MariaDB has no such limit.
inline constexpr std::size_t kLockNameCharsMax = 64;

// Frees every named lock of the session: a connection of ours holds at most one, and GET_LOCK
// is re-entrant (a second grant in one session needs a second RELEASE_LOCK), so "all" is the
// one release that cannot leave a level behind. MariaDB 10.5.2+, MySQL 5.7+.
inline constexpr std::string_view kReleaseAllLocks = "SELECT RELEASE_ALL_LOCKS()";

// The name of the lock `key` of the database `database`: GET_LOCK names are server-wide, so the
// database is part of the name, and two deployments on one server never share a lock (nor block
// each other's relay). `kind` tells the adapters' own locks (kInternalLock: the relay's turn, the
// queue's issue turn) from the lock port's keys (kKeyLock), so no key can name one of those.
// "concertd" + kind + database + ":" + key when that fits in kLockNameCharsMax, else "concertd#"
// + the 64-bit FNV-1a hash of (kind, database, key) in hex, a prefix no plain name has. Two long
// names with one hash only share a lock: slower, never unsafe. Stable across processes and
// builds.
inline constexpr char kKeyLock = ':';
inline constexpr char kInternalLock = '.';

inline std::string lock_name(char kind, std::string_view database, std::string_view key) {
    std::string name = "concertd";
    name += kind;
    name += database;
    name += ':';
    name += key;
    if (name.size() <= kLockNameCharsMax) return name;
    std::uint64_t hash = 14695981039346656037ULL;
    for (unsigned char c : name) {
        hash ^= c;
        hash *= 1099511628211ULL;
    }
    static constexpr char kHex[] = "0123456789abcdef";
    name = "concertd#";
    for (int shift = 60; shift >= 0; shift -= 4) name += kHex[(hash >> shift) & 0xF];
    return name;
}

// Armed while the session of `connection` may hold a named lock. Destroyed armed (an exception,
// a coroutine destroyed mid-call), it discards the connection: the pool closes it and the server
// frees the lock with the session. disarm() once the lock is released or handed on.
class NamedLockGuard {
public:
    explicit NamedLockGuard(PooledConnection& connection) : connection_(&connection) {}
    ~NamedLockGuard() {
        if (connection_) (*connection_)->discard();
    }
    NamedLockGuard(const NamedLockGuard&) = delete;
    NamedLockGuard& operator=(const NamedLockGuard&) = delete;

    void disarm() { connection_ = nullptr; }

private:
    PooledConnection* connection_;
};

}  // namespace concertd::mysql
