// WAL checkpoints leave the writer thread but still keep the WAL bounded.
#include "adapters/sqlite/detail/wal_checkpointer.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

namespace concertd::sqlite::detail {
namespace {

using namespace std::chrono_literals;

class WalCheckpointerTest : public ::testing::Test {
protected:
    void SetUp() override {
        directory_ = std::filesystem::temp_directory_path() /
                     ("concertd-wal-" + std::to_string(::getpid()) + "-" +
                      ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::remove_all(directory_);
        std::filesystem::create_directories(directory_);
        path_ = (directory_ / "wal.db").string();
        writer_ = std::make_unique<Connection>(path_, Connection::Mode::kWriter);
        writer_->exec("CREATE TABLE rows (id INTEGER PRIMARY KEY, body BLOB)");
    }
    void TearDown() override {
        writer_.reset();
        std::filesystem::remove_all(directory_);
    }

    // One transaction per row, as the service commits one change at a time.
    void commit_rows(int count) {
        for (int i = 0; i < count; ++i) {
            writer_->exec("INSERT INTO rows (body) VALUES (zeroblob(1024))");
        }
    }
    std::uintmax_t wal_bytes() const { return std::filesystem::file_size(path_ + "-wal"); }

    std::filesystem::path directory_;
    std::string path_;
    std::unique_ptr<Connection> writer_;
};

TEST_F(WalCheckpointerTest, ACommitPastTheThresholdWakesTheBackgroundCheckpoint) {
    WalCheckpointer checkpointer(path_, *writer_, /*background_frames=*/20,
                                 /*inline_frames=*/1'000'000);
    for (int round = 0; round < 20; ++round) {
        commit_rows(100);
        std::this_thread::sleep_for(2ms);  // the service's writer has idle moments too
    }
    EXPECT_GT(checkpointer.background_checkpoints(), 0);
    EXPECT_EQ(checkpointer.inline_checkpoints(), 0);
    // 2,000 commits of a page or more each: without a checkpoint the WAL would pass 8 MB.
    EXPECT_LT(wal_bytes(), 2u << 20);
}

TEST_F(WalCheckpointerTest, AWalTheBackgroundLeavesTooLongIsCheckpointedByTheWriter) {
    WalCheckpointer checkpointer(path_, *writer_, /*background_frames=*/1'000'000,
                                 /*inline_frames=*/20);
    commit_rows(2000);
    EXPECT_GT(checkpointer.inline_checkpoints(), 0);
    EXPECT_EQ(checkpointer.background_checkpoints(), 0);
    EXPECT_LT(wal_bytes(), 2u << 20);
}

TEST_F(WalCheckpointerTest, WritesWithNoPauseStillKeepTheWalBounded) {
    // With no idle moment the background never finds the whole WAL copied when a write begins,
    // so SQLite cannot restart it: the writer's own checkpoint at `inline_frames` does.
    WalCheckpointer checkpointer(path_, *writer_, /*background_frames=*/20, /*inline_frames=*/200);
    commit_rows(2000);
    EXPECT_GT(checkpointer.inline_checkpoints(), 0);
    // Not 200 frames exactly: a writer's checkpoint that meets the background's is retried later.
    EXPECT_LT(wal_bytes(), 4u << 20);
}

TEST_F(WalCheckpointerTest, TheWriterNoLongerCheckpointsByItself) {
    WalCheckpointer checkpointer(path_, *writer_, /*background_frames=*/1'000'000,
                                 /*inline_frames=*/1'000'000);
    commit_rows(2000);  // past SQLite's own 1,000-frame automatic checkpoint
    EXPECT_GT(wal_bytes(), 8u << 20);  // the reference for the bounds above
}

}  // namespace
}  // namespace concertd::sqlite::detail
