#include "adapters/sqlite/detail/wal_checkpointer.hpp"

#include <spdlog/spdlog.h>

namespace concertd::sqlite::detail {

WalCheckpointer::WalCheckpointer(const std::string& path, Connection& writer,
                                 int background_frames, int inline_frames)
    : writer_(writer),
      connection_(std::make_unique<Connection>(path, Connection::Mode::kCheckpointer)),
      background_frames_(background_frames),
      inline_frames_(inline_frames),
      thread_([this] { run(); }) {
    sqlite3_wal_hook(writer_.handle(), &WalCheckpointer::on_commit, this);
}

WalCheckpointer::~WalCheckpointer() {
    sqlite3_wal_hook(writer_.handle(), nullptr, nullptr);
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
}

// Runs on the writer thread after each commit, with the WAL's size in frames.
int WalCheckpointer::on_commit(void* self, sqlite3* db, const char* schema, int frames) {
    auto& checkpointer = *static_cast<WalCheckpointer*>(self);
    if (frames >= checkpointer.inline_frames_) {
        sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
        checkpointer.inline_.fetch_add(1);
    } else if (frames >= checkpointer.background_frames_) {
        {
            std::lock_guard lock(checkpointer.mutex_);
            checkpointer.wanted_ = true;
        }
        checkpointer.wake_.notify_one();
    }
    return SQLITE_OK;  // a checkpoint that could not finish is retried after a later commit
}

void WalCheckpointer::run() {
    std::unique_lock lock(mutex_);
    while (true) {
        wake_.wait(lock, [this] { return wanted_ || stopping_; });
        if (stopping_) return;
        wanted_ = false;
        lock.unlock();
        int code = sqlite3_wal_checkpoint_v2(connection_->handle(), nullptr,
                                             SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
        if (code != SQLITE_OK && code != SQLITE_BUSY) {
            spdlog::warn("sqlite: background checkpoint failed: {}", sqlite3_errstr(code));
        }
        background_.fetch_add(1);
        lock.lock();
    }
}

}  // namespace concertd::sqlite::detail
