// The read barrier (docs/caching.md, "The read barrier"): the cached reads of one I/O thread
// share one Redis call instead of making one or two each.
//
// Each io_context keeps at most one barrier call in flight. A read registers what it needs (its
// token's ACTIVE check, its cache key's version) in the thread's *next* batch and waits for that
// batch's answer. The next batch is sent only once the call in flight has returned, so every
// answer a read gets comes from a call whose bytes were made after the read began: what Redis
// answers reflects every write whose use case had answered before the read started, exactly as
// a call of the read's own would. Identical tokens and keys in a batch are asked once. A version
// check may also be answered by the thread's last call, when that was sent after the read began
// (check_version's `since`); expect_version puts a key in the next call ahead of the check.
//
// A batch is one EVALSHA, read-only, answered by Redis's clock:
// - per distinct token: ACTIVE (its seq is the user's ACTIVE seq and not past its expiry), not
//   live (the user's ACTIVE entry has another seq or expired), or unsure (no ACTIVE entry: maybe
//   WAITING, whose look is a poll with side effects; or the secret changed): the caller then
//   takes its full path;
// - per distinct cache key: its current version (none if Redis lost it) and whether a value is
//   stored for it.
//
// Thread-safe: any number of threads, each running its own io_context (one thread per
// io_context, this codebase's rule), may call it at once; a thread's batches are only touched
// on that thread. `client` must outlive the barrier and the barrier every call into it.
// Infrastructure failures (Redis away, no answer within the client's timeout, an error reply)
// throw domain::DependencyUnavailable in every read of the batch; no read waits longer than two
// command timeouts (the call in flight, then its own) plus kAnswerWaitSlack.
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/redis/redis_client.hpp"

namespace concertd::redis {

// The queue keys a token check reads (RedisWaitingQueue's `secret`, `aseq`, `active`).
struct TokenKeys {
    std::string secret;
    std::string aseq;
    std::string active;
};

enum class TokenCheck : std::uint8_t {
    kActive,   // ACTIVE and not expired, by Redis's clock
    kNotLive,  // the user's ACTIVE token has another seq, or it expired
    kUnsure,   // not ACTIVE (maybe WAITING), the secret changed, or the batch was full
};

struct VersionCheck {
    std::optional<std::uint64_t> version;  // nullopt: the key has no version yet
    bool value_exists = false;
};

class ReadBarrier {
public:
    // Distinct tokens + keys per batch (bounds one script's time in Redis: ~1 µs each). A read
    // that finds the next batch full gets kUnsure / an empty VersionCheck and takes its own path.
    static constexpr std::size_t kBatchEntriesMax = 1024;
    // A read waits for the call in flight and then its batch's call, each bounded by the
    // client's command timeout; this is added to the two for the wait's own bound.
    static constexpr std::chrono::milliseconds kAnswerWaitSlack{1000};

    struct Counters {
        std::uint64_t calls = 0;     // barrier calls answered or failed
        std::uint64_t reads = 0;     // registrations they carried (before dedup)
        std::uint64_t tokens = 0;    // distinct tokens they asked about
        std::uint64_t versions = 0;  // distinct cache keys they asked about
        std::uint64_t full = 0;      // registrations refused because the batch was full
        std::uint64_t early = 0;     // version checks answered by an earlier call (no call of their own)
    };

    explicit ReadBarrier(RedisClient& client);
    ReadBarrier(const ReadBarrier&) = delete;
    ReadBarrier& operator=(const ReadBarrier&) = delete;
    ~ReadBarrier();

    // The state of the token (user, seq), whose MAC the caller has checked under `secret`.
    boost::asio::awaitable<TokenCheck> check_token(std::shared_ptr<const TokenKeys> keys,
                                                   std::shared_ptr<const std::string> secret,
                                                   std::int64_t user, std::uint64_t seq);
    // The current version of a cache key and whether its value is stored, for a read that began
    // at `since`. The thread's last answered call serves it when that call was sent after `since`
    // and asked for the key (an expect_version, or another read's check): it is then as good as
    // a call of the read's own. The views need only live until the call returns (a key new to
    // the batch is copied into it).
    boost::asio::awaitable<VersionCheck> check_version(
        std::string_view version_key, std::string_view value_key,
        std::chrono::steady_clock::time_point since);
    // check_version for several keys at once: one wait at most, for one call, whatever their
    // number (a dates list checks the usage of each of its schedules).
    struct VersionKeys {
        std::string_view version_key;
        std::string_view value_key;
    };
    boost::asio::awaitable<std::vector<VersionCheck>> check_versions(
        std::span<const VersionKeys> keys, std::chrono::steady_clock::time_point since);
    // Asks for the key's version in the thread's next call without waiting for it: a read says
    // so before its token check, and its check_version then finds the answer in that call. A call
    // that would carry only expectations is not sent.
    boost::asio::awaitable<void> expect_version(std::string_view version_key,
                                                std::string_view value_key);
    // expect_version for several keys at once (a dates list's dates and usage keys).
    boost::asio::awaitable<void> expect_versions(std::span<const VersionKeys> keys);

    Counters counters() const;

    struct Batch;
    struct Thread;
    struct Core;

private:
    // Starts the thread's sender unless one runs.
    static void start_sender(RedisClient& client, const std::shared_ptr<Core>& core,
                             const std::shared_ptr<Thread>& thread,
                             const boost::asio::any_io_executor& executor);
    // After the wait for `batch`'s answer: throws unless it came and was one.
    static void throw_unless_answered(const Batch& batch, boost::system::error_code ec);
    // The thread's sender: sends the next batch whenever the one in flight returned.
    static boost::asio::awaitable<void> send_batches(RedisClient& client,
                                                     std::shared_ptr<Core> core,
                                                     std::shared_ptr<Thread> thread,
                                                     std::uint64_t sender);
    static boost::asio::awaitable<void> send(RedisClient& client, Core& core, Batch& batch);

    RedisClient& client_;
    std::shared_ptr<Core> core_;
    const std::chrono::milliseconds answer_wait_max_;
};

}  // namespace concertd::redis
