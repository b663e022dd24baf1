// adapters::retrying_conflicts: a conflict is tried again, at most kConflictAttemptsMax times;
// a use case that keeps colliding is refused kRateLimited, a background job's call throws.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <optional>
#include <stdexcept>
#include <vector>

#include "adapters/conflict_retry.hpp"

namespace concertd::adapters {
namespace {

struct FakeConflict : std::runtime_error {
    explicit FakeConflict(bool retryable) : std::runtime_error("conflict"), retryable(retryable) {}
    bool is_retryable() const { return retryable; }
    bool retryable;
};

template <class T>
boost::asio::awaitable<std::optional<T>> wrapped(boost::asio::awaitable<T> task) {
    co_return co_await std::move(task);
}

template <class T>
T run(boost::asio::awaitable<T> task) {
    boost::asio::io_context io;
    auto future = boost::asio::co_spawn(io, wrapped(std::move(task)), boost::asio::use_future);
    io.run();
    return std::move(*future.get());
}

// Fails with a conflict `failures` times, then answers 7.
boost::asio::awaitable<domain::Result<int>> flaky(int& calls, int failures, bool retryable) {
    return retrying_conflicts<FakeConflict>([&calls, failures, retryable]() -> boost::asio::awaitable<domain::Result<int>> {
        if (++calls <= failures) throw FakeConflict(retryable);
        co_return 7;
    });
}

TEST(ConflictRetry, RunsAConflictedTransactionAgain) {
    int calls = 0;
    auto result = run(flaky(calls, kConflictAttemptsMax - 1, true));
    ASSERT_TRUE(result.ok());
    EXPECT_EQ(result.value(), 7);
    EXPECT_EQ(calls, kConflictAttemptsMax);
}

TEST(ConflictRetry, AUseCaseThatKeepsCollidingIsRateLimited) {
    int calls = 0;
    auto result = run(flaky(calls, 100, true));
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.refusal().code, domain::Rejection::kRateLimited);
    EXPECT_EQ(calls, kConflictAttemptsMax);
}

TEST(ConflictRetry, OtherErrorsPassThroughAtOnce) {
    int calls = 0;
    EXPECT_THROW(run(flaky(calls, 100, false)), FakeConflict);
    EXPECT_EQ(calls, 1);
}

TEST(ConflictRetry, ABackgroundJobThatKeepsCollidingThrows) {
    int calls = 0;
    auto job = retrying_conflicts<FakeConflict>([&calls]() -> boost::asio::awaitable<std::vector<int>> {
        ++calls;
        throw FakeConflict(true);
        co_return std::vector<int>{};
    });
    EXPECT_THROW(run(std::move(job)), domain::DependencyUnavailable);
    EXPECT_EQ(calls, kConflictAttemptsMax);
}

}  // namespace
}  // namespace concertd::adapters
