// Lock acquires that were given up on before Redis answered (a timeout, a reset connection, a
// cancelled caller), and releases that got no answer. An acquire's SET may still run: a frozen
// Redis (SIGSTOP, a long fork, a stalled VM) runs what waited in its sockets when it resumes,
// and grants the key to an owner nobody will release, so the key stays taken for a whole lease;
// a lease whose release got no answer stays taken until it runs out. AbandonedLeases deletes such keys by
// (key, owner) with the owner-checked release script as soon as Redis answers again: a key
// granted to anyone else is left alone.
//
// One sweeper coroutine at a time, started on the io_context that recorded the first entry,
// sends the releases of the oldest kBatch entries in one pipeline each kPeriod while entries
// remain. An entry ends
// after kAnsweredRounds rounds that Redis answered (commands that waited in other sockets run
// within a round of the resume), or after kKeep without an answer, or when kMaxEntries newer
// ones push it out (its lease still ends by itself).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "adapters/redis/redis_client.hpp"

namespace concertd::redis {

class AbandonedLeases {
public:
    static constexpr std::chrono::milliseconds kPeriod{200};
    static constexpr int kAnsweredRounds = 3;
    static constexpr std::chrono::minutes kKeep{10};
    static constexpr std::size_t kMaxEntries = 10'000;
    static constexpr std::size_t kBatch = 1'000;  // releases per round, oldest first

    // `release`: KEYS[1] lock key, ARGV[1] owner; deletes only when the owner matches. `client`
    // and `release` must outlive every io_context a sweeper runs on or be destroyed after
    // stop() (the destructor calls it).
    AbandonedLeases(RedisClient& client, const RedisScript& release);
    ~AbandonedLeases();
    AbandonedLeases(const AbandonedLeases&) = delete;
    AbandonedLeases& operator=(const AbandonedLeases&) = delete;

    // Thread-safe. Starts a sweeper on `executor` when none runs.
    void add(const boost::asio::any_io_executor& executor, std::string redis_key,
             std::string owner);
    // Entries not yet settled (for tests).
    std::size_t size() const;

private:
    struct State;
    static boost::asio::awaitable<void> sweep(RedisClient& client, const RedisScript& release,
                                              std::shared_ptr<State> state);

    RedisClient& client_;
    const RedisScript& release_;
    std::shared_ptr<State> state_;
};

}  // namespace concertd::redis
