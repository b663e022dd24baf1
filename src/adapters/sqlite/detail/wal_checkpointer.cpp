#include "adapters/sqlite/detail/wal_checkpointer.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

namespace concertd::sqlite::detail {

WalCheckpointer::WalCheckpointer(const std::string& path, Connection& writer,
                                 int background_frames, int inline_frames)
    : writer_(writer),
      connection_(std::make_unique<Connection>(path, Connection::Mode::kCheckpointer)),
      background_frames_(background_frames),
      inline_frames_(inline_frames) {
    sqlite3_wal_hook(writer_.handle(), &WalCheckpointer::on_commit, this);
}

WalCheckpointer::~WalCheckpointer() {
    sqlite3_wal_hook(writer_.handle(), nullptr, nullptr);
    thread_.join();  // runs the checkpoint still queued, if any
}

// Runs on the writer thread after each commit, with the WAL's size in frames.
int WalCheckpointer::on_commit(void* self, sqlite3* db, const char* schema, int frames) {
    auto& checkpointer = *static_cast<WalCheckpointer*>(self);
    if (frames >= checkpointer.inline_frames_) {
        sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
        checkpointer.inline_.fetch_add(1);
    } else if (frames >= checkpointer.background_frames_ && !checkpointer.queued_.exchange(true)) {
        boost::asio::post(checkpointer.thread_, [&checkpointer] {
            checkpointer.checkpoint_in_background();
        });
    }
    return SQLITE_OK;  // a checkpoint that could not finish is retried after a later commit
}

void WalCheckpointer::checkpoint_in_background() {
    queued_.store(false);  // before the checkpoint: a commit during it queues the next one
    int code = sqlite3_wal_checkpoint_v2(connection_->handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                         nullptr, nullptr);
    if (code != SQLITE_OK && code != SQLITE_BUSY) {
        spdlog::warn("sqlite: background checkpoint failed: {}", sqlite3_errstr(code));
    }
    background_.fetch_add(1);
}

}  // namespace concertd::sqlite::detail
