// Moves WAL checkpoints off the writer thread. SQLite's automatic checkpoint runs in the connection
// that committed, and its fsyncs (a few ms on a quiet disk, tens of ms on a busy one) then delay
// every write queued behind it: the tail latency of holds. Here a commit that leaves the WAL past
// `background_frames` wakes a thread that runs a PASSIVE checkpoint on its own connection, which
// never blocks the writer. A WAL that still grows past `inline_frames` (the background cannot keep
// up, or never finds the WAL idle to restart it) is checkpointed by the writer itself, as SQLite
// would have, so the file stays bounded.
#pragma once

#include <atomic>
#include <boost/asio/thread_pool.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "adapters/sqlite/detail/sqlite_connection.hpp"

namespace concertd::sqlite::detail {

class WalCheckpointer {
public:
    static constexpr int kBackgroundFrames = 1000;  // SQLite's own wal_autocheckpoint default
    static constexpr int kInlineFrames = 10000;     // ~40 MB of WAL with 4 KiB pages

    // Hooks into `writer`'s commits (replacing its automatic checkpoint) until destroyed; `writer`
    // must outlive this object, and no write may run while it is constructed or destroyed.
    WalCheckpointer(const std::string& path, Connection& writer,
                    int background_frames = kBackgroundFrames, int inline_frames = kInlineFrames);
    ~WalCheckpointer();
    WalCheckpointer(const WalCheckpointer&) = delete;
    WalCheckpointer& operator=(const WalCheckpointer&) = delete;

    // Checkpoints run so far, by where they ran (for tests and diagnosis).
    std::int64_t background_checkpoints() const { return background_.load(); }
    std::int64_t inline_checkpoints() const { return inline_.load(); }

private:
    static int on_commit(void* self, sqlite3* db, const char* schema, int frames);
    void checkpoint_in_background();

    Connection& writer_;
    std::unique_ptr<Connection> connection_;  // used only by thread_
    const int background_frames_;
    const int inline_frames_;
    std::atomic<std::int64_t> background_{0};
    std::atomic<std::int64_t> inline_{0};
    std::atomic<bool> queued_{false};  // one background checkpoint waits at a time
    boost::asio::thread_pool thread_{1};
};

}  // namespace concertd::sqlite::detail
