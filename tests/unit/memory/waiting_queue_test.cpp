#include "adapters/memory/waiting_queue.hpp"

#include <gtest/gtest.h>
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <list>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "memory/memory_test_support.hpp"

namespace concertd::memory {
namespace {

using namespace std::chrono_literals;
using domain::TokenStatus;
using testing::FakeClock;
using testing::Runner;

app::QueueSettings settings(std::int64_t admit_per_second, std::int64_t max_active,
                            std::int64_t active_ttl_seconds = 600,
                            std::int64_t waiting_ttl_seconds = 60) {
    return {admit_per_second, max_active, active_ttl_seconds, waiting_ttl_seconds};
}

// A queue with its clock and a runner, with synchronous shorthands for the port's coroutines.
class QueueFixture {
public:
    explicit QueueFixture(app::QueueSettings s) : queue(s, clock) {}

    app::IssuedTicket issue(domain::UserId user) { return runner.run(queue.issue(user)); }
    std::optional<domain::QueueTicket> find(const std::string& token) {
        return runner.run(queue.find(token));
    }
    void expire_user(domain::UserId user) { runner.run(queue.expire_user(user)); }
    std::int64_t admit() { return runner.run(queue.admit(clock.now())); }
    app::QueueStats stats() { return runner.run(queue.stats()); }
    std::int64_t position(const std::string& token) {
        const auto ticket = find(token);
        return ticket ? ticket->position : -1;
    }

    FakeClock clock;
    Runner runner;
    MemoryWaitingQueue queue;
};

TEST(MemoryWaitingQueue, IssuesInFifoOrderWithPositionsAndEstimatedWait) {
    QueueFixture q(settings(2, 1000));
    std::vector<std::string> tokens;
    for (domain::UserId user = 1; user <= 3; ++user) {
        const auto issued = q.issue(user);
        EXPECT_TRUE(issued.created);
        EXPECT_EQ(issued.ticket.user_id, user);
        EXPECT_EQ(issued.ticket.status, TokenStatus::kWaiting);
        EXPECT_EQ(issued.ticket.position, user);
        tokens.push_back(issued.ticket.token);
    }
    const std::int64_t expected_wait[] = {1, 1, 2};  // ceil(position / 2)
    for (std::size_t i = 0; i < tokens.size(); ++i) {
        const auto ticket = q.find(tokens[i]);
        ASSERT_TRUE(ticket);
        EXPECT_EQ(ticket->token, tokens[i]);
        EXPECT_EQ(ticket->user_id, static_cast<domain::UserId>(i + 1));
        EXPECT_EQ(ticket->status, TokenStatus::kWaiting);
        EXPECT_EQ(ticket->position, static_cast<std::int64_t>(i + 1));
        EXPECT_EQ(ticket->estimated_wait_seconds, expected_wait[i]);
    }
    EXPECT_EQ(q.stats().waiting, 3);
    EXPECT_EQ(q.stats().active, 0);
}

TEST(MemoryWaitingQueue, TokensAre32LowercaseHexAndDistinct) {
    QueueFixture q(settings(100, 1000));
    std::set<std::string> seen;
    for (domain::UserId user = 1; user <= 1000; ++user) {
        const std::string token = q.issue(user).ticket.token;
        ASSERT_EQ(token.size(), 32u);
        EXPECT_TRUE(std::all_of(token.begin(), token.end(), [](char c) {
            return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
        })) << token;
        seen.insert(token);
    }
    EXPECT_EQ(seen.size(), 1000u);
}

TEST(MemoryWaitingQueue, ReissueReturnsTheLiveToken) {
    QueueFixture q(settings(100, 1000));
    const auto first = q.issue(7);
    q.issue(8);
    const auto again = q.issue(7);
    EXPECT_FALSE(again.created);
    EXPECT_EQ(again.ticket.token, first.ticket.token);
    EXPECT_EQ(again.ticket.position, 1);

    EXPECT_EQ(q.admit(), 2);
    const auto active = q.issue(7);
    EXPECT_FALSE(active.created);
    EXPECT_EQ(active.ticket.token, first.ticket.token);
    EXPECT_EQ(active.ticket.status, TokenStatus::kActive);
    EXPECT_EQ(active.ticket.position, 0);
    EXPECT_EQ(active.ticket.estimated_wait_seconds, 0);
}

TEST(MemoryWaitingQueue, FindRejectsMalformedForgedAndUnknownTokens) {
    QueueFixture q(settings(100, 1000));
    const std::string token = q.issue(1).ticket.token;
    std::string upper = token;
    std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
    std::string flipped = token;
    flipped[31] = flipped[31] == '0' ? '1' : '0';

    EXPECT_TRUE(q.find(token));
    EXPECT_FALSE(q.find(""));
    EXPECT_FALSE(q.find("not-a-token"));
    EXPECT_FALSE(q.find(token + "0"));
    EXPECT_FALSE(q.find(token.substr(1)));
    EXPECT_FALSE(q.find(flipped));
    if (upper != token) {
        EXPECT_FALSE(q.find(upper));
    }
}

TEST(MemoryWaitingQueue, AdmissionRespectsAdmitPerSecond) {
    QueueFixture q(settings(10, 1000));
    std::vector<std::string> tokens;
    for (domain::UserId user = 1; user <= 50; ++user) {
        tokens.push_back(q.issue(user).ticket.token);
    }
    EXPECT_EQ(q.admit(), 10);  // a fresh bucket holds one second of admissions
    EXPECT_EQ(q.admit(), 0);   // no time passed
    q.clock.advance(100ms);
    EXPECT_EQ(q.admit(), 1);  // smooth: 10/s is one per 100 ms
    q.clock.advance(250ms);
    EXPECT_EQ(q.admit(), 2);  // 2.5 earned, half kept
    q.clock.advance(50ms);
    EXPECT_EQ(q.admit(), 1);
    q.clock.advance(10s);
    EXPECT_EQ(q.admit(), 10);  // a late ticker catches up one second, not ten

    EXPECT_EQ(q.stats().active, 24);
    EXPECT_EQ(q.stats().waiting, 26);
    EXPECT_EQ(q.find(tokens[23])->status, TokenStatus::kActive);
    const auto head = q.find(tokens[24]);
    ASSERT_TRUE(head);
    EXPECT_EQ(head->status, TokenStatus::kWaiting);
    EXPECT_EQ(head->position, 1);
    EXPECT_EQ(q.position(tokens[49]), 26);
    EXPECT_EQ(q.find(tokens[49])->estimated_wait_seconds, 3);
}

TEST(MemoryWaitingQueue, FreshTokenIsAdmittedOnTheNextTickWhenBudgetAllows) {
    QueueFixture q(settings(1, 1000));
    const std::string first = q.issue(1).ticket.token;
    EXPECT_EQ(q.admit(), 1);
    EXPECT_EQ(q.find(first)->status, TokenStatus::kActive);

    const std::string second = q.issue(2).ticket.token;
    EXPECT_EQ(q.admit(), 0);
    for (int tick = 0; tick < 9; ++tick) {
        q.clock.advance(100ms);
        EXPECT_EQ(q.admit(), 0) << tick;
    }
    q.clock.advance(100ms);
    EXPECT_EQ(q.admit(), 1);
    EXPECT_EQ(q.find(second)->status, TokenStatus::kActive);
}

TEST(MemoryWaitingQueue, AdmissionRespectsMaxActive) {
    QueueFixture q(settings(100, 3));
    std::vector<std::string> tokens;
    for (domain::UserId user = 1; user <= 5; ++user) {
        tokens.push_back(q.issue(user).ticket.token);
    }
    EXPECT_EQ(q.admit(), 3);
    EXPECT_EQ(q.stats().active, 3);
    EXPECT_EQ(q.stats().waiting, 2);
    EXPECT_EQ(q.position(tokens[3]), 1);
    q.clock.advance(1s);
    EXPECT_EQ(q.admit(), 0);

    q.expire_user(1);  // paid: its place frees up
    EXPECT_EQ(q.admit(), 1);
    EXPECT_EQ(q.find(tokens[3])->status, TokenStatus::kActive);
    EXPECT_EQ(q.position(tokens[4]), 1);
    EXPECT_EQ(q.stats().active, 3);
}

TEST(MemoryWaitingQueue, WaitingTokenNotPolledDropsOut) {
    QueueFixture q(settings(100, 1, 600, 60));
    const std::string blocker = q.issue(100).ticket.token;
    EXPECT_EQ(q.admit(), 1);  // max_active reached: the line stands still
    const std::string first = q.issue(1).ticket.token;
    const std::string second = q.issue(2).ticket.token;

    q.clock.advance(30s);
    EXPECT_TRUE(q.find(second));  // a poll
    q.clock.advance(30s);
    EXPECT_FALSE(q.find(first));  // 60 s without a poll: gone before any sweep
    EXPECT_TRUE(q.find(second));

    q.expire_user(100);
    EXPECT_EQ(q.admit(), 1);  // drops the stale head, admits the next
    EXPECT_EQ(q.find(second)->status, TokenStatus::kActive);
    EXPECT_EQ(q.stats().waiting, 0);

    const auto reissued = q.issue(1);
    EXPECT_TRUE(reissued.created);
    EXPECT_NE(reissued.ticket.token, first);
    EXPECT_EQ(reissued.ticket.position, 1);
    EXPECT_FALSE(q.find(blocker));
}

TEST(MemoryWaitingQueue, SweepDropsStaleTokensInTheMiddleOfTheLine) {
    QueueFixture q(settings(100, 1, 100'000, 60));
    q.issue(1);
    EXPECT_EQ(q.admit(), 1);
    const std::string t2 = q.issue(2).ticket.token;
    const std::string t3 = q.issue(3).ticket.token;
    const std::string t4 = q.issue(4).ticket.token;
    EXPECT_EQ(q.position(t4), 3);

    q.clock.advance(40s);
    q.find(t2);
    q.find(t4);
    q.clock.advance(30s);  // t3 last polled 70 s ago
    EXPECT_EQ(q.position(t2), 1);
    EXPECT_FALSE(q.find(t3));
    EXPECT_EQ(q.position(t4), 3);  // not swept yet: the dropped token still counts
    EXPECT_EQ(q.stats().waiting, 3);

    EXPECT_EQ(q.admit(), 0);  // max_active still reached, but the sweep runs
    EXPECT_EQ(q.stats().waiting, 2);
    EXPECT_EQ(q.position(t2), 1);
    EXPECT_EQ(q.position(t4), 2);
    EXPECT_EQ(q.find(t4)->estimated_wait_seconds, 1);
}

TEST(MemoryWaitingQueue, ActiveTokenExpiresLazilyInFindAndInAdmit) {
    QueueFixture q(settings(100, 1, 600, 100'000));
    const std::string first = q.issue(1).ticket.token;
    EXPECT_EQ(q.admit(), 1);
    const std::string second = q.issue(2).ticket.token;

    q.clock.advance(599s);
    EXPECT_EQ(q.admit(), 0);
    EXPECT_EQ(q.find(first)->status, TokenStatus::kActive);
    q.clock.advance(1s);
    EXPECT_FALSE(q.find(first));  // past active_ttl before admit() ran
    EXPECT_EQ(q.stats().active, 1);

    EXPECT_EQ(q.admit(), 1);  // the expired one no longer counts toward max_active
    EXPECT_EQ(q.find(second)->status, TokenStatus::kActive);
    EXPECT_EQ(q.stats().active, 1);

    const auto reissued = q.issue(1);
    EXPECT_TRUE(reissued.created);
    EXPECT_NE(reissued.ticket.token, first);
    EXPECT_EQ(reissued.ticket.position, 1);
}

TEST(MemoryWaitingQueue, ReissueAfterLazyExpiryFreesTheActivePlace) {
    QueueFixture q(settings(100, 1, 600, 100'000));
    q.issue(1);
    EXPECT_EQ(q.admit(), 1);
    q.clock.advance(600s);
    const auto again = q.issue(1);  // the expired token is replaced before admit() sees it
    EXPECT_TRUE(again.created);
    EXPECT_EQ(q.stats().active, 0);
    EXPECT_EQ(q.admit(), 1);
    EXPECT_EQ(q.find(again.ticket.token)->status, TokenStatus::kActive);
}

TEST(MemoryWaitingQueue, ExpireUserEndsWaitingAndActiveTokens) {
    QueueFixture q(settings(100, 1));
    const std::string t1 = q.issue(1).ticket.token;
    const std::string t2 = q.issue(2).ticket.token;
    const std::string t3 = q.issue(3).ticket.token;
    EXPECT_EQ(q.admit(), 1);

    q.expire_user(2);
    EXPECT_FALSE(q.find(t2));
    EXPECT_EQ(q.position(t3), 1);
    EXPECT_EQ(q.stats().waiting, 1);

    q.expire_user(1);
    EXPECT_FALSE(q.find(t1));
    EXPECT_EQ(q.stats().active, 0);

    q.expire_user(999);  // nobody: nothing happens
    EXPECT_EQ(q.stats().waiting, 1);
    EXPECT_EQ(q.admit(), 1);
    EXPECT_EQ(q.find(t3)->status, TokenStatus::kActive);
}

TEST(MemoryWaitingQueue, RejectsNonPositiveSettings) {
    FakeClock clock;
    EXPECT_THROW(MemoryWaitingQueue(settings(0, 10), clock), std::invalid_argument);
    EXPECT_THROW(MemoryWaitingQueue(settings(10, 0), clock), std::invalid_argument);
    EXPECT_THROW(MemoryWaitingQueue(settings(10, 10, 0, 10), clock), std::invalid_argument);
    EXPECT_THROW(MemoryWaitingQueue(settings(10, 10, 10, 0), clock), std::invalid_argument);
}

// A seeded random walk against a plain model: every token polled every step (so none drops on
// its own), users issued, expired, re-issued and admitted. Positions must be exact FIFO ranks
// through slot reuse, sweeps and compactions.
TEST(MemoryWaitingQueue, PositionsStayExactThroughRandomChurn) {
    const std::uint32_t seed = std::random_device{}();
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 random(seed);

    constexpr std::int64_t kMaxActive = 40;
    constexpr std::int64_t kActiveTtlMs = 30'000;
    QueueFixture q(settings(7, kMaxActive, kActiveTtlMs / 1000, 20));

    struct ModelUser {
        std::string token;
        bool active = false;
        std::int64_t active_until_ms = 0;
    };
    std::map<domain::UserId, ModelUser> users;  // users with a token the queue still holds
    std::list<domain::UserId> line;
    const auto now_ms = [&] { return q.clock.now().time_since_epoch().count(); };
    const auto live = [&](const ModelUser& u) { return !u.active || now_ms() < u.active_until_ms; };

    for (int step = 0; step < 2500; ++step) {
        const int op = static_cast<int>(random() % 10);
        const domain::UserId user = 1 + static_cast<domain::UserId>(random() % 300);
        if (op < 6) {
            const auto issued = q.issue(user);
            const auto it = users.find(user);
            if (it != users.end() && live(it->second)) {
                ASSERT_FALSE(issued.created) << "step " << step;
                ASSERT_EQ(issued.ticket.token, it->second.token);
            } else {
                ASSERT_TRUE(issued.created) << "step " << step;
                if (it != users.end()) {
                    line.remove(user);
                    users.erase(it);
                }
                users[user] = ModelUser{issued.ticket.token};
                line.push_back(user);
            }
        } else if (op < 7) {
            q.expire_user(user);
            line.remove(user);
            users.erase(user);
        } else {
            q.clock.advance(std::chrono::milliseconds(random() % 1500));
            // admit() first expires, then admits from the head.
            std::int64_t active = 0;
            for (auto it = users.begin(); it != users.end();) {
                if (it->second.active && !live(it->second)) {
                    it = users.erase(it);
                } else {
                    active += it->second.active ? 1 : 0;
                    ++it;
                }
            }
            const std::int64_t admitted = q.admit();
            ASSERT_LE(admitted, std::min<std::int64_t>(kMaxActive - active,
                                                       static_cast<std::int64_t>(line.size())));
            for (std::int64_t i = 0; i < admitted; ++i) {
                ModelUser& u = users[line.front()];
                u.active = true;
                u.active_until_ms = now_ms() + kActiveTtlMs;
                line.pop_front();
            }
            const auto stats = q.stats();
            ASSERT_EQ(stats.waiting, static_cast<std::int64_t>(line.size()));
            ASSERT_EQ(stats.active, active + admitted);
        }

        std::int64_t rank = 0;
        for (const domain::UserId waiting : line) {
            ++rank;
            const auto ticket = q.find(users[waiting].token);  // also the poll that keeps it
            ASSERT_TRUE(ticket) << "step " << step;
            ASSERT_EQ(ticket->status, TokenStatus::kWaiting);
            ASSERT_EQ(ticket->position, rank) << "step " << step;
        }
        for (const auto& [id, u] : users) {
            if (!u.active) {
                continue;
            }
            const auto ticket = q.find(u.token);
            ASSERT_EQ(ticket.has_value(), live(u)) << "step " << step;
            if (ticket) {
                ASSERT_EQ(ticket->status, TokenStatus::kActive);
            }
        }
    }
}

// Many threads issue and poll while a ticker admits: for ThreadSanitizer, and the counts add up.
TEST(MemoryWaitingQueue, ConcurrentIssueFindAndAdmit) {
    FakeClock clock;
    MemoryWaitingQueue queue(settings(1000, 100'000, 1'000'000, 1'000'000), clock);
    constexpr int kThreads = 4;
    constexpr int kUsersPerThread = 2000;
    std::atomic<bool> done{false};

    std::thread ticker([&] {
        Runner runner;
        while (!done.load()) {
            clock.advance(10ms);
            runner.run(queue.admit(clock.now()));
            std::this_thread::sleep_for(1ms);
        }
    });
    std::vector<std::thread> workers;
    for (int t = 0; t < kThreads; ++t) {
        workers.emplace_back([&, t] {
            Runner runner;
            for (int i = 0; i < kUsersPerThread; ++i) {
                const domain::UserId user = t * kUsersPerThread + i + 1;
                const auto issued = runner.run(queue.issue(user));
                EXPECT_TRUE(issued.created);
                const auto ticket = runner.run(queue.find(issued.ticket.token));
                EXPECT_TRUE(ticket);
                if (i % 7 == 0) {
                    runner.run(queue.expire_user(user));
                }
            }
        });
    }
    for (auto& worker : workers) {
        worker.join();
    }
    done = true;
    ticker.join();

    Runner runner;
    runner.run(queue.admit(clock.now()));
    const auto stats = runner.run(queue.stats());
    const std::int64_t expired = kThreads * ((kUsersPerThread + 6) / 7);
    EXPECT_EQ(stats.waiting + stats.active, kThreads * kUsersPerThread - expired);
}

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
// SPEC §5: a million waiting users cost the queue at most 200 MB.
TEST(MemoryWaitingQueue, AMillionWaitingUsersFitIn200MB) {
    constexpr domain::UserId kUsers = 1'000'000;
    FakeClock clock;
    Runner runner;
    // Heap in use: small blocks plus mmap()ed big ones (vectors and hash tables).
    const auto heap_bytes = [] {
        const struct mallinfo2 info = mallinfo2();
        return info.uordblks + info.hblkhd;
    };
    const std::size_t before = heap_bytes();
    {
        MemoryWaitingQueue queue(settings(100, 1000), clock);
        const auto fill = [&]() -> boost::asio::awaitable<std::int64_t> {
            for (domain::UserId user = 1; user <= kUsers; ++user) {
                co_await queue.issue(user);
            }
            co_return (co_await queue.stats()).waiting;
        };
        EXPECT_EQ(runner.run(fill()), kUsers);
        const std::size_t used = heap_bytes() - before;
        RecordProperty("bytes_per_waiting_user", static_cast<int>(used / kUsers));
        std::printf("queue memory: %zu bytes for %lld waiting users (%zu per user)\n", used,
                    static_cast<long long>(kUsers), used / kUsers);
        EXPECT_LE(used, 200u * 1000 * 1000);
    }
}
#endif

}  // namespace
}  // namespace concertd::memory
