// The SQLite file and the threads that touch it. SQLite calls block, so they never run on an I/O
// thread: writes go to one writer thread with the only writing connection (SQLite allows one
// writer at a time anyway), reads to a few reader threads with their own connections (WAL lets
// them read while the writer writes), WAL checkpoints to a thread of their own (WalCheckpointer).
// Callers co_await the result on their own executor.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "adapters/sqlite/detail/sqlite_connection.hpp"
#include "adapters/sqlite/detail/wal_checkpointer.hpp"
#include "app/stats.hpp"

namespace concertd::sqlite {

class SqliteDatabase {
public:
    // Opens (creating if needed) the file, applies migrations. Throws on failure.
    // `round_trips`, if given, counts every job run on the writer or a reader thread (one
    // transaction or one read each): SQLite's "database round trip" (/metrics).
    SqliteDatabase(std::string path, int reader_count, app::Counter* round_trips = nullptr);
    ~SqliteDatabase();

    // Runs `work(connection)` on the writer thread; its result or exception comes back to the
    // caller's executor. SQLite errors surface as domain::DependencyUnavailable when the file
    // is unusable (busy, I/O, full) and as detail::SqliteError otherwise.
    template <class Work>
    auto write(Work work) -> boost::asio::awaitable<std::invoke_result_t<Work, detail::Connection&>> {
        auto job = [this, work = std::move(work)]() mutable {
            count_round_trip();
            return guarded([&] { return work(*writer_); });
        };
        return run_on(writer_pool_, std::move(job));
    }

    // Runs `work(connection)` on a reader thread with a read-only connection.
    template <class Work>
    auto read(Work work) -> boost::asio::awaitable<std::invoke_result_t<Work, detail::Connection&>> {
        auto job = [this, work = std::move(work)]() mutable {
            count_round_trip();
            auto lease = lease_reader();
            return guarded([&] { return work(*lease.connection); });
        };
        return run_on(reader_pool_, std::move(job));
    }

    const std::string& path() const { return path_; }

    // Waits for every queued read and write to finish; nothing is posted back after it returns.
    // For shutdown, before the callers' io_contexts are destroyed.
    void join();

private:
    struct ReaderLease {
        SqliteDatabase* owner;
        std::unique_ptr<detail::Connection> connection;
        ~ReaderLease();
    };
    ReaderLease lease_reader();
    void count_round_trip() {
        if (round_trips_) round_trips_->add();
    }

    template <class Fn>
    static auto guarded(Fn&& fn) -> decltype(fn()) {
        try {
            return fn();
        } catch (const detail::SqliteError& error) {
            rethrow_as_dependency_failure(error);
            throw;
        }
    }
    static void rethrow_as_dependency_failure(const detail::SqliteError& error);

    // Runs `fn` on `pool` and resumes the caller on its own executor with the result. Only the
    // plain function runs on the pool: a coroutine never changes thread (compilers may cache
    // thread_local addresses across co_await, and Asio's frame allocator is thread_local).
    template <class Fn>
    static auto run_on(boost::asio::thread_pool& pool, Fn fn)
        -> boost::asio::awaitable<std::invoke_result_t<Fn>> {
        using R = std::invoke_result_t<Fn>;
        using Slot = std::conditional_t<std::is_void_v<R>, bool, std::optional<R>>;
        auto initiate = [&pool, fn = std::move(fn)](auto handler) mutable {
            boost::asio::post(pool, [fn = std::move(fn), handler = std::move(handler)]() mutable {
                std::exception_ptr failure;
                Slot slot{};
                try {
                    if constexpr (std::is_void_v<R>) {
                        fn();
                    } else {
                        slot.emplace(fn());
                    }
                } catch (...) {
                    failure = std::current_exception();
                }
                auto executor = boost::asio::get_associated_executor(handler);
                boost::asio::post(executor, [handler = std::move(handler), failure,
                                             slot = std::move(slot)]() mutable {
                    std::move(handler)(failure, std::move(slot));
                });
            });
        };
        Slot result = co_await boost::asio::async_initiate<decltype(boost::asio::use_awaitable),
                                                           void(std::exception_ptr, Slot)>(
            std::move(initiate), boost::asio::use_awaitable);
        if constexpr (!std::is_void_v<R>) co_return std::move(*result);
    }

    std::string path_;
    app::Counter* round_trips_ = nullptr;
    std::unique_ptr<detail::Connection> writer_;
    std::unique_ptr<detail::WalCheckpointer> checkpointer_;  // after writer_: unhooks before it
    std::mutex readers_mutex_;
    std::vector<std::unique_ptr<detail::Connection>> idle_readers_;
    boost::asio::thread_pool writer_pool_{1};
    boost::asio::thread_pool reader_pool_;
};

}  // namespace concertd::sqlite
