// RedisWaitingQueue, RedisLock and RedisCatalogCache against a throwaway redis-server
// (scripts/redis-start.sh), started once for this binary; every test that needs it is skipped,
// with the reason, when it cannot start. A "process" is a RedisClient of its own, used from its
// own thread and io_context.
//
// CONCERTD_REDIS_MEMORY_USERS=1000000 makes the memory test issue that many waiting users
// (default 100,000) and print the figure docs/redis.md quotes.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "adapters/redis/redis_catalog_cache.hpp"
#include "adapters/redis/redis_client.hpp"
#include "adapters/redis/redis_lock.hpp"
#include "adapters/redis/redis_waiting_queue.hpp"
#include "domain/outcome.hpp"

namespace concertd::redis {
namespace {

// The start of a read that begins at the call (CatalogCache's `since`).
app::ReadStart starting_now() { return std::chrono::steady_clock::now(); }

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using domain::TokenStatus;

// --- the server ----------------------------------------------------------------------------------

std::pair<int, std::string> run_command(const std::string& command) {
    std::string output;
    FILE* pipe = ::popen(command.c_str(), "r");
    if (!pipe) return {-1, ""};
    std::array<char, 256> buffer{};
    while (std::fgets(buffer.data(), buffer.size(), pipe)) output += buffer.data();
    const int status = ::pclose(pipe);
    while (!output.empty() && (output.back() == '\n' || output.back() == '\r')) output.pop_back();
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

class RedisServer : public ::testing::Environment {
public:
    void SetUp() override {
        std::string pattern = std::filesystem::temp_directory_path() / "concertd-redisad-XXXXXX";
        if (!::mkdtemp(pattern.data())) {
            reason_ = "mkdtemp failed";
            return;
        }
        dir_ = pattern;
        const auto [status, output] = run_command(script("redis-start.sh") + " " + dir_);
        if (status != 0 || !output.starts_with("redis://")) {
            reason_ = "scripts/redis-start.sh failed (exit " + std::to_string(status) + ")";
            return;
        }
        url_ = output;
    }

    void TearDown() override {
        if (dir_.empty()) return;
        run_command(script("redis-stop.sh") + " " + dir_);
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }

    const std::string& url() const { return url_; }
    const std::string& reason() const { return reason_; }

private:
    static std::string script(const char* name) {
        return std::string(CONCERTD_SOURCE_DIR) + "/scripts/" + name;
    }

    std::string dir_;
    std::string url_;
    std::string reason_;
};

auto* const server =
    dynamic_cast<RedisServer*>(::testing::AddGlobalTestEnvironment(new RedisServer));

RedisOptions options() {
    RedisOptions options = parse_redis_url(server->url());
    options.command_timeout = 5s;  // the memory test loads a busy server
    return options;
}

// --- running coroutines --------------------------------------------------------------------------

// The connection's reader keeps an io_context busy for good, so run handlers until the
// coroutine is done rather than until run() returns.
template <class T>
T run_on(asio::io_context& io, asio::awaitable<T> task) {
    io.restart();
    std::future<T> result = asio::co_spawn(io, std::move(task), asio::use_future);
    while (result.wait_for(0s) != std::future_status::ready) {
        if (io.run_one_for(10s) == 0 && result.wait_for(0s) != std::future_status::ready) {
            ADD_FAILURE() << "io_context ran out of work before the coroutine finished";
            break;
        }
    }
    return result.get();
}

// Runs every task concurrently on `io` until all are done; rethrows the first failure.
void run_all(asio::io_context& io, std::vector<asio::awaitable<void>> tasks) {
    io.restart();
    std::vector<std::future<void>> results;
    for (auto& task : tasks) {
        results.push_back(asio::co_spawn(io, std::move(task), asio::use_future));
    }
    for (auto& result : results) {
        while (result.wait_for(0s) != std::future_status::ready) io.run_one_for(100ms);
    }
    for (auto& result : results) result.get();
}

asio::awaitable<void> sleep_for(Clock::duration duration) {
    asio::steady_timer timer(co_await asio::this_coro::executor, duration);
    co_await timer.async_wait(asio::use_awaitable);
}

// One "process": its own client and io_context.
struct Process {
    explicit Process(RedisOptions o = options()) : client(std::move(o)) {}
    template <class T>
    T run(asio::awaitable<T> task) {
        return run_on(io, std::move(task));
    }
    RedisReply command(std::vector<std::string> argv) {
        return run(client.command(std::move(argv)));
    }

    asio::io_context io;  // declared first: destroyed after the client
    RedisClient client;
};

class RedisAdaptersTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (server->url().empty()) GTEST_SKIP() << "no redis-server: " << server->reason();
        admin.command({"FLUSHALL"});
    }

    Process admin;
};

// --- the queue -----------------------------------------------------------------------------------

app::QueueSettings settings(std::int64_t admit_per_second, std::int64_t max_active,
                            std::int64_t active_ttl_seconds = 600,
                            std::int64_t waiting_ttl_seconds = 60) {
    return {admit_per_second, max_active, active_ttl_seconds, waiting_ttl_seconds};
}

// A queue on a process of its own, with synchronous shorthands.
struct QueueProcess : Process {
    explicit QueueProcess(app::QueueSettings s) : queue(client, s) {}

    app::IssuedTicket issue(domain::UserId user) { return run(queue.issue(user)); }
    std::optional<domain::QueueTicket> find(const std::string& token) {
        return run(queue.find(token));
    }
    void expire_user(domain::UserId user) { run(queue.expire_user(user)); }
    std::int64_t admit() { return run(queue.admit(domain::TimePoint{})); }
    app::QueueStats stats() { return run(queue.stats()); }
    std::int64_t position(const std::string& token) {
        const auto ticket = find(token);
        return ticket ? ticket->position : -1;
    }

    RedisWaitingQueue queue;
};

using RedisWaitingQueueTest = RedisAdaptersTest;

TEST_F(RedisWaitingQueueTest, IssuesInFifoOrderWithPositionsAndEstimatedWait) {
    QueueProcess q(settings(2, 1000));
    std::vector<std::string> tokens;
    for (domain::UserId user = 1; user <= 5; ++user) {
        const auto issued = q.issue(user);
        EXPECT_TRUE(issued.created);
        EXPECT_EQ(issued.ticket.user_id, user);
        EXPECT_EQ(issued.ticket.status, TokenStatus::kWaiting);
        EXPECT_EQ(issued.ticket.position, user);
        EXPECT_EQ(issued.ticket.estimated_wait_seconds, (user + 1) / 2);
        EXPECT_EQ(issued.ticket.token.size(), RedisWaitingQueue::kTokenLength);
        tokens.push_back(issued.ticket.token);
    }
    EXPECT_EQ(std::set<std::string>(tokens.begin(), tokens.end()).size(), tokens.size());
    for (std::size_t i = 0; i < tokens.size(); ++i) {
        const auto ticket = q.find(tokens[i]);
        ASSERT_TRUE(ticket);
        EXPECT_EQ(ticket->user_id, static_cast<domain::UserId>(i + 1));
        EXPECT_EQ(ticket->position, static_cast<std::int64_t>(i + 1));
        EXPECT_EQ(ticket->token, tokens[i]);
    }
    EXPECT_EQ(q.stats().waiting, 5);
    EXPECT_EQ(q.stats().active, 0);
}

TEST_F(RedisWaitingQueueTest, ReissueReturnsTheLiveTokenAlsoFromAnotherProcess) {
    QueueProcess q(settings(1, 1000));
    QueueProcess other(settings(1, 1000));
    const auto first = q.issue(1);
    q.issue(2);
    const auto again = other.issue(1);  // the secret is shared through Redis
    EXPECT_FALSE(again.created);
    EXPECT_EQ(again.ticket.token, first.ticket.token);
    EXPECT_EQ(again.ticket.position, 1);
    EXPECT_TRUE(other.find(first.ticket.token));

    EXPECT_EQ(q.admit(), 1);  // a fresh bucket holds one admission
    const auto active = other.issue(1);
    EXPECT_FALSE(active.created);
    EXPECT_EQ(active.ticket.token, first.ticket.token);
    EXPECT_EQ(active.ticket.status, TokenStatus::kActive);
    EXPECT_EQ(active.ticket.position, 0);
    EXPECT_EQ(q.find(first.ticket.token)->status, TokenStatus::kActive);
    EXPECT_EQ(q.position(q.issue(2).ticket.token), 1);  // user 2 moved up
}

TEST_F(RedisWaitingQueueTest, ForgedMalformedAndOtherUsersTokensAreNotFound) {
    QueueProcess q(settings(1, 1000));
    const std::string token = q.issue(1).ticket.token;
    q.issue(2);
    // Found first, so its MAC is remembered by this thread: that vouches for no other token.
    EXPECT_TRUE(q.find(token));
    EXPECT_FALSE(q.find(""));
    EXPECT_FALSE(q.find("not-a-token"));
    EXPECT_FALSE(q.find(std::string(64, '0')));
    EXPECT_FALSE(q.find(token.substr(0, 63)));
    std::string upper = token;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    EXPECT_FALSE(q.find(upper));
    // Every single-digit change is refused: the user (bound), the seq, or the MAC.
    for (std::size_t i = 0; i < token.size(); i += 5) {
        std::string changed = token;
        changed[i] = changed[i] == '0' ? '1' : '0';
        EXPECT_FALSE(q.find(changed)) << "digit " << i;
    }
    // User 2's id in user 1's token: the MAC no longer matches.
    std::string other_user = token;
    other_user[15] = '2';
    EXPECT_FALSE(q.find(other_user));
    EXPECT_TRUE(q.find(token));
}

TEST_F(RedisWaitingQueueTest, ExpireUserEndsTheTokenAndMovesTheLineUp) {
    QueueProcess q(settings(1, 1000));
    const auto t1 = q.issue(1).ticket.token;
    const auto t2 = q.issue(2).ticket.token;
    const auto t3 = q.issue(3).ticket.token;
    q.expire_user(2);
    EXPECT_FALSE(q.find(t2));
    EXPECT_EQ(q.position(t1), 1);
    EXPECT_EQ(q.position(t3), 2);
    q.expire_user(99);  // no token: nothing happens

    EXPECT_EQ(q.admit(), 1);
    q.expire_user(1);  // an ACTIVE token ends too (after payment)
    EXPECT_FALSE(q.find(t1));
    EXPECT_EQ(q.stats().active, 0);
    const auto again = q.issue(2);
    EXPECT_TRUE(again.created);
    EXPECT_NE(again.ticket.token, t2);  // the old token stays dead
    EXPECT_FALSE(q.find(t2));
    EXPECT_EQ(again.ticket.position, 2);  // behind user 3
}

TEST_F(RedisWaitingQueueTest, StaleWaitingTokensDropOut) {
    QueueProcess q(settings(1, 1000, 600, /*waiting_ttl_seconds=*/1));
    const auto t1 = q.issue(1).ticket.token;
    const auto t2 = q.issue(2).ticket.token;
    const auto t3 = q.issue(3).ticket.token;
    for (int i = 0; i < 5; ++i) {  // only user 3 keeps polling
        std::this_thread::sleep_for(300ms);
        ASSERT_TRUE(q.find(t3));
    }
    EXPECT_FALSE(q.find(t1));  // invisible before any admit() has run
    EXPECT_FALSE(q.find(t2));

    EXPECT_EQ(q.admit(), 1);  // stale tokens cost no budget: the admission goes to user 3
    const auto ticket = q.find(t3);
    ASSERT_TRUE(ticket);
    EXPECT_EQ(ticket->status, TokenStatus::kActive);
    EXPECT_EQ(q.stats().waiting, 0);  // the stale ones were removed

    const auto reissued = q.issue(1);  // a dropped user starts again at the end
    EXPECT_TRUE(reissued.created);
    EXPECT_NE(reissued.ticket.token, t1);
    EXPECT_EQ(reissued.ticket.position, 1);
}

TEST_F(RedisWaitingQueueTest, SweepRemovesStaleTokensBehindTheHead) {
    QueueProcess q(settings(1, 1000, 600, /*waiting_ttl_seconds=*/1));
    const auto head = q.issue(1).ticket.token;
    std::vector<std::string> middle;
    for (domain::UserId user = 2; user <= 50; ++user) middle.push_back(q.issue(user).ticket.token);
    const auto tail = q.issue(51).ticket.token;
    for (int i = 0; i < 4; ++i) {  // the head and the tail keep polling
        std::this_thread::sleep_for(350ms);
        ASSERT_TRUE(q.find(head));
        ASSERT_TRUE(q.find(tail));
    }
    EXPECT_EQ(q.position(tail), 51);  // the stale middle still counts until swept
    q.run(q.queue.admit(domain::TimePoint{}));  // admits the head, sweeps the rest
    EXPECT_EQ(q.position(tail), 1);
    EXPECT_EQ(q.stats().waiting, 1);
}

TEST_F(RedisWaitingQueueTest, ActiveTokensExpireAfterActiveTtl) {
    QueueProcess q(settings(10, 1000, /*active_ttl_seconds=*/1));
    const auto t1 = q.issue(1).ticket.token;
    EXPECT_EQ(q.admit(), 1);
    ASSERT_TRUE(q.find(t1));
    EXPECT_EQ(q.stats().active, 1);
    std::this_thread::sleep_for(1100ms);
    EXPECT_FALSE(q.find(t1));  // before any sweep
    const auto again = q.issue(1);
    EXPECT_TRUE(again.created);
    EXPECT_NE(again.ticket.token, t1);
    EXPECT_EQ(again.ticket.status, TokenStatus::kWaiting);
    EXPECT_EQ(again.ticket.position, 1);
    EXPECT_EQ(q.admit(), 1);
    EXPECT_EQ(q.find(again.ticket.token)->status, TokenStatus::kActive);
    EXPECT_FALSE(q.find(t1));  // the old token of the same user stays dead

    const auto t2 = q.issue(2).ticket.token;
    std::this_thread::sleep_for(1100ms);
    EXPECT_EQ(q.admit(), 1);  // user 1 expired and is removed; user 2 is admitted
    EXPECT_EQ(q.stats().active, 1);
    EXPECT_EQ(q.find(t2)->status, TokenStatus::kActive);
}

TEST_F(RedisWaitingQueueTest, TokensDieWithTheSecretWhenRedisLosesItsData) {
    QueueProcess q(settings(1, 1000));
    const auto before = q.issue(1).ticket.token;
    EXPECT_TRUE(q.find(before));  // its MAC is remembered under the old secret
    admin.command({"FLUSHALL"});
    EXPECT_FALSE(q.find(before));  // the process reloads the new secret, the token is worthless
    const auto after = q.issue(1);
    EXPECT_TRUE(after.created);
    EXPECT_NE(after.ticket.token, before);
    EXPECT_TRUE(q.find(after.ticket.token));
}

// Several "processes" tick admit() at once, two tickers each, every few ms.
struct AdmitRun {
    std::atomic<std::int64_t> admitted{0};
    std::atomic<std::int64_t> max_active_seen{0};
    std::atomic<bool> failed{false};
};

void admit_concurrently(const app::QueueSettings& s, AdmitRun& run,
                        std::chrono::milliseconds duration) {
    const auto until = Clock::now() + duration;
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
        threads.emplace_back([&] {
            try {
                QueueProcess process(s);
                auto loop = [&]() -> asio::awaitable<void> {
                    while (Clock::now() < until) {
                        run.admitted += co_await process.queue.admit(domain::TimePoint{});
                        const auto active = (co_await process.queue.stats()).active;
                        std::int64_t seen = run.max_active_seen.load();
                        while (active > seen &&
                               !run.max_active_seen.compare_exchange_weak(seen, active)) {
                        }
                        co_await sleep_for(3ms);
                    }
                };
                std::vector<asio::awaitable<void>> tickers;
                tickers.push_back(loop());
                tickers.push_back(loop());
                run_all(process.io, std::move(tickers));
            } catch (const std::exception& error) {
                std::fprintf(stderr, "admitter failed: %s\n", error.what());
                run.failed = true;
            }
        });
    }
    for (auto& thread : threads) thread.join();
}

// The first `admitted` tokens ACTIVE, the rest WAITING at 1, 2, … in order.
void expect_fifo(QueueProcess& q, const std::vector<std::string>& tokens, std::int64_t admitted) {
    for (std::size_t i = 0; i < tokens.size(); ++i) {
        const auto ticket = q.find(tokens[i]);
        ASSERT_TRUE(ticket) << "token " << i;
        if (static_cast<std::int64_t>(i) < admitted) {
            EXPECT_EQ(ticket->status, TokenStatus::kActive) << "token " << i;
        } else {
            EXPECT_EQ(ticket->status, TokenStatus::kWaiting) << "token " << i;
            EXPECT_EQ(ticket->position, static_cast<std::int64_t>(i) - admitted + 1);
        }
    }
}

// Two processes issue at once; the tokens in line order (by position).
std::vector<std::string> issue_from_two_processes(const app::QueueSettings& s, int per_process) {
    std::vector<std::vector<std::string>> issued(2);
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
        threads.emplace_back([&, t] {
            QueueProcess process(s);
            // Named: a coroutine lambda's closure must outlive its frame.
            auto issue_some = [&](int first) -> asio::awaitable<void> {
                for (int i = first; i < per_process; i += 4) {
                    const domain::UserId user = 1 + t + 2 * i;  // interleaved ids
                    auto ticket = co_await process.queue.issue(user);
                    issued[t].push_back(ticket.ticket.token);
                }
            };
            std::vector<asio::awaitable<void>> tasks;
            for (int c = 0; c < 4; ++c) tasks.push_back(issue_some(c));
            run_all(process.io, std::move(tasks));
        });
    }
    for (auto& thread : threads) thread.join();

    QueueProcess observer(s);
    std::vector<std::string> line(2 * per_process);
    for (const auto& tokens : issued) {
        for (const auto& token : tokens) {
            const auto position = observer.position(token);
            EXPECT_GE(position, 1);
            EXPECT_LE(position, 2 * per_process);
            if (position < 1 || position > 2 * per_process) continue;
            EXPECT_TRUE(line[position - 1].empty()) << "two tokens at position " << position;
            line[position - 1] = token;
        }
    }
    return line;
}

TEST_F(RedisWaitingQueueTest, TwoProcessesIssueIntoOneLineAndNeverOverAdmit) {
    const auto s = settings(/*admit_per_second=*/1000, /*max_active=*/37);
    const auto line = issue_from_two_processes(s, 100);
    ASSERT_EQ(line.size(), 200u);

    AdmitRun run;
    admit_concurrently(s, run, 500ms);
    ASSERT_FALSE(run.failed);
    EXPECT_EQ(run.admitted.load(), 37);
    EXPECT_LE(run.max_active_seen.load(), 37);
    QueueProcess q(s);
    EXPECT_EQ(q.stats().active, 37);
    expect_fifo(q, line, 37);  // FIFO across processes: the first 37 in line got in
}

TEST_F(RedisWaitingQueueTest, TwoProcessesShareOneAdmissionRate) {
    const auto s = settings(/*admit_per_second=*/20, /*max_active=*/1000);
    QueueProcess q(s);
    std::vector<std::string> tokens;
    for (domain::UserId user = 1; user <= 200; ++user) tokens.push_back(q.issue(user).ticket.token);

    const auto started = Clock::now();
    AdmitRun run;
    admit_concurrently(s, run, 1500ms);
    const auto elapsed_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
    ASSERT_FALSE(run.failed);
    // A full bucket (20) plus 20 per second of the run, whichever process admitted.
    const std::int64_t admitted = run.admitted.load();
    EXPECT_LE(admitted, 20 + (elapsed_ms * 20 + 999) / 1000);
    EXPECT_GE(admitted, 20 + 20);
    EXPECT_EQ(q.stats().active, admitted);
    expect_fifo(q, tokens, admitted);
}

std::int64_t used_memory(Process& process) {
    const RedisReply info = process.command({"INFO", "memory"});
    const std::string marker = "used_memory:";
    const auto at = info.text.find(marker);
    if (at == std::string::npos) return -1;
    return std::stoll(info.text.substr(at + marker.size()));
}

TEST_F(RedisWaitingQueueTest, WaitingUsersCostLittleMemory) {
    std::int64_t users = 100'000;
    if (const char* env = std::getenv("CONCERTD_REDIS_MEMORY_USERS")) users = std::atoll(env);
    ASSERT_GT(users, 0);
    QueueProcess q(settings(100, 1000));
    q.issue(users + 1);  // the secret and the fixed keys exist before the measurement
    const std::int64_t before = used_memory(admin);
    admin.command({"CONFIG", "RESETSTAT"});

    constexpr int kConcurrency = 256;  // in flight at once on the one connection
    std::int64_t next = 1;
    const auto started = Clock::now();
    auto worker = [&]() -> asio::awaitable<void> {
        while (next <= users) {
            const domain::UserId user = next++;  // one thread: no race on next
            co_await q.queue.issue(user);
        }
    };
    std::vector<asio::awaitable<void>> workers;
    for (int w = 0; w < kConcurrency; ++w) workers.push_back(worker());
    run_all(q.io, std::move(workers));
    const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
    const std::int64_t after = used_memory(admin);

    EXPECT_EQ(q.stats().waiting, users + 1);
    const double per_user = static_cast<double>(after - before) / static_cast<double>(users);
    std::printf("[ memory ] %lld waiting users: used_memory %lld -> %lld bytes, %.1f B per user, "
                "%.1f MB per million; issued at %.0f/s\n",
                static_cast<long long>(users), static_cast<long long>(before),
                static_cast<long long>(after), per_user, per_user, users / seconds);
    EXPECT_LE(per_user, 200.0);  // SPEC §5: a million waiting users ≤ 200 MB

    const auto usage = [&](const char* key) {
        return admin.command({"MEMORY", "USAGE", std::string("concertd:queue:") + key, "SAMPLES",
                              "0"}).integer;
    };
    std::printf("[ memory ] keys: line %lld bytes, poll %lld bytes\n",
                static_cast<long long>(usage("line")), static_cast<long long>(usage("poll")));

    // Redis's own time per issue, and per admit() tick (the sweep examines kSweepBatch entries).
    const RedisReply stats = admin.command({"INFO", "commandstats"});
    const auto at = stats.text.find("cmdstat_evalsha:");
    if (at != std::string::npos) {
        const std::string line = stats.text.substr(at, stats.text.find('\r', at) - at);
        std::printf("[ memory ] %s\n", line.c_str());
    }
    admin.command({"CONFIG", "RESETSTAT"});
    std::int64_t admitted = 0;
    for (int tick = 0; tick < 5; ++tick) {
        admitted += q.admit();
        std::this_thread::sleep_for(RedisWaitingQueue::kSweepStep);
    }
    const RedisReply admit_stats = admin.command({"INFO", "commandstats"});
    const auto admit_at = admit_stats.text.find("cmdstat_evalsha:");
    if (admit_at != std::string::npos) {
        std::printf("[ memory ] admit ticks: %s\n",
                    admit_stats.text
                        .substr(admit_at, admit_stats.text.find('\r', admit_at) - admit_at)
                        .c_str());
    }

    // Positions stay exact at this size (ZRANK); user users+1 went first.
    const auto last = q.issue(users);
    EXPECT_FALSE(last.created);
    EXPECT_EQ(last.ticket.position, users + 1 - admitted);
}

// --- the lock ------------------------------------------------------------------------------------

struct LockProcess : Process {
    explicit LockProcess(std::chrono::milliseconds lease = 1s, RedisOptions o = options())
        : Process(std::move(o)), lock(client, lease) {}
    std::optional<app::LockLease> acquire(const std::string& key, std::chrono::milliseconds wait) {
        return run(lock.acquire(key, wait));
    }
    void release(const app::LockLease& lease) { run(lock.release(lease)); }

    RedisLock lock;
};

using RedisLockTest = RedisAdaptersTest;

// A field of INFO, e.g. "process_id"; empty when missing.
std::string info_field(Process& process, const std::string& name) {
    const std::string text = process.command({"INFO", "server"}).text;
    const auto at = text.find(name + ":");
    if (at == std::string::npos) return "";
    const auto start = at + name.size() + 1;
    return text.substr(start, text.find_first_of("\r\n", start) - start);
}

struct CounterRun {
    // Read and written in two steps (not an atomic increment), so overlapping holders lose
    // updates; atomic only so that TSAN, which cannot see ordering through Redis, stays quiet.
    std::atomic<std::int64_t> counter{0};
    std::mutex mutex;
    std::vector<std::uint64_t> fences;  // in grant order (appended while holding the lock)
    std::atomic<int> timeouts{0};
};

asio::awaitable<void> increment_loop(RedisLock& lock, CounterRun& run, int iterations) {
    for (int i = 0; i < iterations; ++i) {
        auto lease = co_await lock.acquire("counter", 10s);
        if (!lease) {
            ++run.timeouts;
            continue;
        }
        {
            std::lock_guard guard(run.mutex);
            run.fences.push_back(lease->fence);
        }
        const std::int64_t seen = run.counter.load(std::memory_order_relaxed);
        co_await sleep_for(std::chrono::microseconds(100 * (i % 3)));
        run.counter.store(seen + 1, std::memory_order_relaxed);
        co_await lock.release(*lease);
    }
}

TEST_F(RedisLockTest, MutualExclusionAcrossTwoProcessesLosesNoUpdate) {
    constexpr int kCoroutinesPerProcess = 3;
    constexpr int kIterations = 40;
    CounterRun run;
    std::atomic<bool> failed{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
        threads.emplace_back([&] {
            try {
                LockProcess process;
                std::vector<asio::awaitable<void>> tasks;
                for (int c = 0; c < kCoroutinesPerProcess; ++c) {
                    tasks.push_back(increment_loop(process.lock, run, kIterations));
                }
                run_all(process.io, std::move(tasks));
                EXPECT_EQ(process.lock.held_count(), 0u);
            } catch (const std::exception& error) {
                std::fprintf(stderr, "process failed: %s\n", error.what());
                failed = true;
            }
        });
    }
    for (auto& thread : threads) thread.join();
    ASSERT_FALSE(failed);
    EXPECT_EQ(run.timeouts.load(), 0);
    const int total = 2 * kCoroutinesPerProcess * kIterations;
    EXPECT_EQ(run.counter.load(), total);
    ASSERT_EQ(run.fences.size(), static_cast<std::size_t>(total));
    EXPECT_TRUE(std::is_sorted(run.fences.begin(), run.fences.end()));
    EXPECT_EQ(std::adjacent_find(run.fences.begin(), run.fences.end()), run.fences.end());
}

TEST_F(RedisLockTest, WaitRunsOutWhileAnotherProcessHoldsAndTheFenceGrows) {
    LockProcess holder;
    LockProcess waiter;
    const auto held = holder.acquire("seat:1:1", 1s);
    ASSERT_TRUE(held);

    const auto started = Clock::now();
    EXPECT_FALSE(waiter.acquire("seat:1:1", 150ms));
    const auto waited = Clock::now() - started;
    EXPECT_GE(waited, 150ms);
    EXPECT_LT(waited, 1000ms);
    EXPECT_EQ(waiter.lock.held_count(), 0u);
    EXPECT_FALSE(waiter.acquire("seat:1:1", 0ms));  // no wait: one try

    const auto other = waiter.acquire("seat:1:2", 0ms);  // another key is free
    ASSERT_TRUE(other);
    waiter.release(*other);

    holder.release(*held);
    const auto granted = waiter.acquire("seat:1:1", 150ms);
    ASSERT_TRUE(granted);
    EXPECT_GT(granted->fence, held->fence);
    EXPECT_NE(granted->owner, held->owner);
    waiter.release(*granted);
    const auto third = holder.acquire("seat:1:1", 0ms);
    ASSERT_TRUE(third);
    EXPECT_GT(third->fence, granted->fence);
    holder.release(*third);
}

TEST_F(RedisLockTest, ReleaseByANonOwnerDoesNothing) {
    LockProcess holder;
    LockProcess stranger;
    const auto lease = holder.acquire("wallet:7", 1s);
    ASSERT_TRUE(lease);
    app::LockLease forged = *lease;
    forged.owner = "someone-else";
    stranger.release(forged);
    holder.release(forged);
    EXPECT_EQ(holder.lock.held_count(), 1u);
    EXPECT_FALSE(stranger.acquire("wallet:7", 0ms));

    holder.release(*lease);
    holder.release(*lease);  // twice: nothing more
    EXPECT_EQ(holder.lock.held_count(), 0u);
    const auto next = stranger.acquire("wallet:7", 0ms);
    ASSERT_TRUE(next);
    holder.release(*lease);  // the old lease cannot release the new holder's
    EXPECT_FALSE(holder.acquire("wallet:7", 0ms));
    stranger.release(*next);
}

TEST_F(RedisLockTest, RenewalKeepsTheLockPastItsLeaseWhileTheHolderWorks) {
    constexpr auto kLease = 90ms;
    LockProcess holder(kLease);
    LockProcess other(kLease);
    std::optional<app::LockLease> lease;
    int refused = 0;
    auto hold = [&]() -> asio::awaitable<void> {
        lease = co_await holder.lock.acquire("payment:1", 1s);
        co_await sleep_for(5 * kLease);  // the work outlasts the lease several times
    };
    std::vector<asio::awaitable<void>> work;
    work.push_back(hold());
    std::thread contender([&] {
        std::this_thread::sleep_for(20ms);
        for (int i = 0; i < 8; ++i) {
            if (!other.acquire("payment:1", 0ms)) ++refused;
            std::this_thread::sleep_for(kLease / 2);
        }
    });
    run_all(holder.io, std::move(work));
    contender.join();
    ASSERT_TRUE(lease);
    EXPECT_EQ(refused, 8);
    const auto ttl = admin.command({"PTTL", "concertd:lock:l:payment:1"});
    EXPECT_GT(ttl.integer, 0);  // still held, with a live expiry
    holder.release(*lease);
    EXPECT_TRUE(other.acquire("payment:1", 0ms));
}

TEST_F(RedisLockTest, AStalledHolderLosesTheLockToALargerFence) {
    constexpr auto kLease = 90ms;
    LockProcess stalled(kLease);
    LockProcess next(kLease);
    const auto old_lease = stalled.acquire("wallet:9", 1s);
    ASSERT_TRUE(old_lease);
    ASSERT_TRUE(stalled.lock.stop_renewal_for_test(*old_lease));

    const auto started = Clock::now();
    const auto new_lease = next.acquire("wallet:9", 2s);
    ASSERT_TRUE(new_lease);
    EXPECT_GE(Clock::now() - started, 50ms);  // only once the old lease ran out
    EXPECT_GT(new_lease->fence, old_lease->fence);  // the database refuses the stalled holder

    stalled.release(*old_lease);  // wakes up late: must not free the new holder's key
    EXPECT_FALSE(stalled.acquire("wallet:9", 0ms));
    next.release(*new_lease);
}

// A frozen Redis (SIGSTOP) runs the commands that waited in its sockets when it resumes: an
// acquire that timed out meanwhile is granted to an owner nobody would release for a whole
// lease. The lock releases it as soon as Redis answers again.
TEST_F(RedisLockTest, AnAcquireGivenUpWhileRedisWasFrozenIsReleasedWhenRedisResumes) {
    constexpr auto kLease = 20s;  // far longer than the test: only a release frees the key
    RedisOptions impatient = options();
    impatient.command_timeout = 200ms;
    LockProcess caller(kLease, impatient);
    const auto warm = caller.acquire("warm", 0ms);  // connected, scripts loaded
    ASSERT_TRUE(warm);
    caller.release(*warm);
    const auto pid = static_cast<pid_t>(std::stoll(info_field(admin, "process_id")));
    ASSERT_GT(pid, 0);

    ASSERT_EQ(::kill(pid, SIGSTOP), 0);
    EXPECT_THROW(caller.acquire("wallet:42", 0ms), domain::DependencyUnavailable);
    ASSERT_EQ(::kill(pid, SIGCONT), 0);
    EXPECT_EQ(caller.lock.abandoned_count(), 1u);

    // The SET that waited in the socket ran on resume: the key is taken, for a long lease.
    const std::string key = "concertd:lock:l:wallet:42";
    auto deadline = Clock::now() + 2s;
    while (admin.command({"EXISTS", key}).integer == 0 && Clock::now() < deadline) {
        std::this_thread::sleep_for(10ms);
    }
    ASSERT_EQ(admin.command({"EXISTS", key}).integer, 1) << "the abandoned SET never ran";
    EXPECT_GT(admin.command({"PTTL", key}).integer, 10'000);

    // The caller's io_context runs (as a server's does): its sweeper releases the key.
    std::thread running([&] {
        caller.io.restart();
        caller.io.run_for(2s);
    });
    LockProcess other;
    const auto started = Clock::now();
    const auto lease = other.acquire("wallet:42", 3s);
    const auto waited = Clock::now() - started;
    running.join();
    ASSERT_TRUE(lease);
    EXPECT_LT(waited, 1500ms);
    EXPECT_EQ(caller.lock.abandoned_count(), 0u);  // answered rounds settled it
    other.release(*lease);
}

TEST_F(RedisLockTest, FencesKeepGrowingAfterTheCounterIsLost) {
    LockProcess process;
    std::uint64_t last = 0;
    for (int i = 0; i < 3; ++i) {
        const auto lease = process.acquire("seat:2:5", 0ms);
        ASSERT_TRUE(lease);
        EXPECT_GT(lease->fence, last);
        last = lease->fence;
        process.release(*lease);
    }
    admin.command({"FLUSHALL"});  // Redis restarted without its data
    const auto lease = process.acquire("seat:2:5", 0ms);
    ASSERT_TRUE(lease);
    EXPECT_GT(lease->fence, last);
    process.release(*lease);
}

TEST_F(RedisLockTest, AWaiterInTheSameProcessIsWokenByTheRelease) {
    LockProcess process;
    std::optional<app::LockLease> first;
    std::optional<app::LockLease> second;
    Clock::time_point released;
    Clock::time_point granted;
    auto holder = [&]() -> asio::awaitable<void> {
        first = co_await process.lock.acquire("wallet:1", 1s);
        co_await sleep_for(300ms);  // the waiter's backoff has reached kBackoffMax by now
        released = Clock::now();
        co_await process.lock.release(*first);
    };
    auto waiter = [&]() -> asio::awaitable<void> {
        co_await sleep_for(20ms);
        second = co_await process.lock.acquire("wallet:1", 2s);
        granted = Clock::now();
        co_await process.lock.release(*second);
    };
    std::vector<asio::awaitable<void>> tasks;
    tasks.push_back(holder());
    tasks.push_back(waiter());
    run_all(process.io, std::move(tasks));
    ASSERT_TRUE(first);
    ASSERT_TRUE(second);
    EXPECT_GT(second->fence, first->fence);
    EXPECT_LT(granted - released, RedisLock::kBackoffMax / 2);  // not a full backoff later
    EXPECT_EQ(process.lock.held_count(), 0u);
}

TEST_F(RedisLockTest, LocalWaitersOfOneKeyAskRedisOnlyWhenItIsFreeHere) {
    LockProcess process;
    // A burst that will not wait: one try reaches Redis, the others answer busy here.
    constexpr int kBurst = 50;
    std::vector<std::optional<app::LockLease>> burst(kBurst);
    std::vector<asio::awaitable<void>> tries;
    for (auto& lease : burst) {
        tries.push_back([](RedisLock& lock, std::optional<app::LockLease>& out)
                            -> asio::awaitable<void> {
            out = co_await lock.acquire("seat:5:5", 0ms);
        }(process.lock, lease));
    }
    run_all(process.io, std::move(tries));
    EXPECT_EQ(std::ranges::count_if(burst, [](const auto& lease) { return lease.has_value(); }),
              1);
    EXPECT_EQ(process.lock.tries(), 1u);
    for (const auto& lease : burst) {
        if (lease) process.release(*lease);
    }
    // A crowd that waits: each gets the key in turn, with one try each.
    constexpr int kCrowd = 40;
    int granted = 0;
    std::vector<asio::awaitable<void>> crowd;
    for (int i = 0; i < kCrowd; ++i) {
        crowd.push_back([](RedisLock& lock, int& count) -> asio::awaitable<void> {
            const auto lease = co_await lock.acquire("seat:5:5", 10s);
            if (!lease) co_return;
            ++count;
            co_await sleep_for(1ms);
            co_await lock.release(*lease);
        }(process.lock, granted));
    }
    run_all(process.io, std::move(crowd));
    EXPECT_EQ(granted, kCrowd);
    EXPECT_EQ(process.lock.tries(), 1u + kCrowd);
    EXPECT_EQ(process.lock.held_count(), 0u);
    EXPECT_EQ(process.command({"EXISTS", RedisLock::kDefaultKeyPrefix + "l:seat:5:5"}).integer, 0);
}

// --- the cache -----------------------------------------------------------------------------------

domain::SeatMap seat_map_of(domain::ScheduleId schedule, int seats, domain::Won price = 10'000) {
    domain::SeatMap map;
    map.schedule_id = schedule;
    for (int i = 1; i <= seats; ++i) {
        domain::SeatState seat;
        seat.seat_no = i;
        seat.price_won = price;
        if (i % 3 == 1) {
            seat.stored_status = domain::SeatStatus::kHeld;
            seat.hold_expires_at =
                domain::TimePoint(std::chrono::milliseconds(1'700'000'000'000 + i));
        } else if (i % 3 == 2) {
            seat.stored_status = domain::SeatStatus::kSold;
        }
        map.seats.push_back(seat);
    }
    return map;
}

bool same(const domain::SeatMap& a, const domain::SeatMap& b) {
    if (a.schedule_id != b.schedule_id || a.seats.size() != b.seats.size()) return false;
    for (std::size_t i = 0; i < a.seats.size(); ++i) {
        const auto& x = a.seats[i];
        const auto& y = b.seats[i];
        if (x.seat_no != y.seat_no || x.price_won != y.price_won ||
            x.stored_status != y.stored_status || x.hold_expires_at != y.hold_expires_at) {
            return false;
        }
    }
    return true;
}

TEST(RedisCacheEncodingTest, SeatMapsDatesAndUsageRoundTrip) {
    const domain::SeatMap map = seat_map_of(42, 50);
    const std::string text = encode_seat_map(map);
    const auto decoded = decode_seat_map(text);
    ASSERT_TRUE(decoded);
    EXPECT_TRUE(same(*decoded, map));
    EXPECT_LT(text.size(), 50u * 32u);

    app::ScheduleDates dates;
    for (int i = 1; i <= 3; ++i) {
        dates.push_back(
            {100 + i, domain::TimePoint(std::chrono::milliseconds(1'800'000'000'000 + i)), 50});
    }
    const auto dates_back = decode_schedule_dates(encode_schedule_dates(dates));
    ASSERT_TRUE(dates_back);
    ASSERT_EQ(dates_back->size(), 3u);
    for (std::size_t i = 0; i < 3; ++i) {
        EXPECT_EQ((*dates_back)[i].id, dates[i].id);
        EXPECT_EQ((*dates_back)[i].starts_at, dates[i].starts_at);
        EXPECT_EQ((*dates_back)[i].total_seats, dates[i].total_seats);
    }
    EXPECT_TRUE(decode_schedule_dates(encode_schedule_dates({})));

    domain::ScheduleUsage usage{101, 7, {}};
    for (int h = 0; h < 3; ++h) {
        usage.hold_expiries.push_back(domain::TimePoint(std::chrono::milliseconds(h)));
    }
    const auto usage_back = decode_schedule_usage(encode_schedule_usage(usage));
    ASSERT_TRUE(usage_back);
    EXPECT_EQ(usage_back->schedule_id, 101);
    EXPECT_EQ(usage_back->sold_seats, 7);
    EXPECT_EQ(usage_back->hold_expiries, usage.hold_expiries);
    EXPECT_TRUE(decode_seat_map(encode_seat_map(domain::SeatMap{})));
}

TEST(RedisCacheEncodingTest, AnythingElseDecodesToNothing) {
    for (const char* text : {"", "[", "{}", "[]", "[2,1,0]", "[1,1,1]", "[1,1,1,1,0,9,-1]",
                             "[1,1,1,1,0,0]", "[1,1,1,1,0,0,-1,5]", "[1,1,1,1.5,0,0,-1]",
                             "[1,-1]", "\"x\"", "[1,1,1,1,0,0,-1]x"}) {
        EXPECT_FALSE(decode_seat_map(text)) << text;
    }
    for (const char* text : {"", "[1]", "[1,1,5,0]", "[1,1,5,0,-1]", "[1,1,5,0,50,9]", "[1,-1]"}) {
        EXPECT_FALSE(decode_schedule_dates(text)) << text;
    }
    for (const char* text : {"", "[1]", "[1,5,0]", "[1,5,-1,0]", "[1,5,0,1]", "[1,5,0,0,9]",
                             "[1,5,2,1,2,3]", "[2,5,0,0]"}) {
        EXPECT_FALSE(decode_schedule_usage(text)) << text;
    }
}

struct CacheProcess : Process {
    CacheProcess() : cache(client) {}
    app::CacheLookup<domain::SeatMap> seat_map(domain::ScheduleId schedule) {
        return run(cache.seat_map(schedule, starting_now()));
    }
    void put(domain::ScheduleId schedule, domain::SeatMap map, std::uint64_t generation) {
        run(cache.put_seat_map(schedule, std::make_shared<const domain::SeatMap>(std::move(map)),
                               generation));
    }
    void invalidate(domain::ScheduleId schedule) { run(cache.invalidate(schedule)); }

    RedisCatalogCache cache;
};

using RedisCatalogCacheTest = RedisAdaptersTest;

TEST_F(RedisCatalogCacheTest, MissPutHitAndTheInProcessLayer) {
    CacheProcess a;
    CacheProcess b;
    const auto miss = a.seat_map(7);
    EXPECT_FALSE(miss.value);
    EXPECT_GT(miss.generation, 0u);
    a.put(7, seat_map_of(7, 50), miss.generation);

    const auto local = a.seat_map(7);  // the putter's own copy: only the version moved
    ASSERT_TRUE(local.value);
    EXPECT_EQ(local.generation, miss.generation);
    EXPECT_EQ(a.cache.counters().local_hits, 1u);

    const auto remote = b.seat_map(7);  // another process: the value comes from Redis
    ASSERT_TRUE(remote.value);
    EXPECT_TRUE(same(*remote.value, seat_map_of(7, 50)));
    EXPECT_EQ(b.cache.counters().redis_hits, 1u);
    const auto again = b.seat_map(7);
    EXPECT_EQ(again.value, remote.value);  // the same decoded object, from b's layer
    EXPECT_EQ(b.cache.counters().local_hits, 1u);

    const auto dates_miss = a.run(a.cache.schedules(3, starting_now()));
    EXPECT_FALSE(dates_miss.value);
    a.run(a.cache.put_schedules(3, std::make_shared<const app::ScheduleDates>(1),
                                dates_miss.generation));
    EXPECT_EQ(b.run(b.cache.schedules(3, starting_now())).value->size(), 1u);
}

TEST_F(RedisCatalogCacheTest, AnInvalidationByAnotherProcessIsSeenAtOnce) {
    CacheProcess reader;
    CacheProcess writer;
    const auto miss = reader.seat_map(7);
    reader.put(7, seat_map_of(7, 50, 10'000), miss.generation);
    ASSERT_TRUE(reader.seat_map(7).value);  // cached in Redis and in the reader's layer

    writer.invalidate(7);  // a hold committed in the writer's process
    const auto after = reader.seat_map(7);
    EXPECT_FALSE(after.value);  // the reader's local copy is not served any more
    EXPECT_GT(after.generation, miss.generation);
    reader.put(7, seat_map_of(7, 50, 20'000), after.generation);
    const auto fresh = writer.seat_map(7);
    ASSERT_TRUE(fresh.value);
    EXPECT_EQ(fresh.value->seats.front().price_won, 20'000);
    EXPECT_EQ(reader.seat_map(7).value->seats.front().price_won, 20'000);

    writer.invalidate(8);  // another schedule of the same concert: seat map 7 stays
    EXPECT_TRUE(reader.seat_map(7).value);
}

TEST_F(RedisCatalogCacheTest, ASlowLoadersPutAfterAnInvalidationIsRefused) {
    CacheProcess loader;
    CacheProcess writer;
    const auto seen = loader.seat_map(7);  // the loader looks, then reads the database…
    writer.invalidate(7);                  // …while a hold commits and invalidates
    loader.put(7, seat_map_of(7, 50), seen.generation);  // its state is older than the commit
    EXPECT_FALSE(loader.seat_map(7).value);
    EXPECT_FALSE(writer.seat_map(7).value);
}

// Usage entries are put together in one script, each under its own compare-and-set: a put whose
// schedule was invalidated since its lookup is refused, the others are stored.
TEST_F(RedisCatalogCacheTest, AUsagePutIsRefusedOnlyForTheScheduleInvalidatedSince) {
    CacheProcess loader;
    CacheProcess writer;
    const std::vector<domain::ScheduleId> ids{7, 8};
    const auto seen = loader.run(loader.cache.usage(ids, starting_now()));
    ASSERT_EQ(seen.size(), 2u);
    EXPECT_FALSE(seen[0].value);
    writer.invalidate(7);  // a hold commits while the loader reads the database
    std::vector<app::UsagePut> puts;
    for (std::size_t i = 0; i < ids.size(); ++i) {
        puts.push_back({ids[i],
                        std::make_shared<const domain::ScheduleUsage>(
                            domain::ScheduleUsage{ids[i], 1, {}}),
                        seen[i].generation});
    }
    loader.run(loader.cache.put_usage(puts));
    const auto after = writer.run(writer.cache.usage(ids, starting_now()));
    EXPECT_FALSE(after[0].value);  // older than the commit: never stored
    ASSERT_TRUE(after[1].value);
    EXPECT_EQ(after[1].value->sold_seats, 1);
    EXPECT_EQ(writer.cache.counters().redis_hits, 1u);
}

TEST_F(RedisCatalogCacheTest, TheLocalCopyNeverOutlivesRedisOrRedisLosingItsData) {
    CacheProcess a;
    const auto miss = a.seat_map(7);
    a.put(7, seat_map_of(7, 50), miss.generation);
    ASSERT_TRUE(a.seat_map(7).value);

    admin.command({"DEL", "concertd:cache:sm:7"});  // the safety TTL ran out
    const auto expired = a.seat_map(7);
    EXPECT_FALSE(expired.value);
    EXPECT_EQ(expired.generation, miss.generation);
    a.put(7, seat_map_of(7, 50), expired.generation);
    ASSERT_TRUE(a.seat_map(7).value);

    admin.command({"FLUSHALL"});  // Redis lost everything: the version is not reused
    const auto lost = a.seat_map(7);
    EXPECT_FALSE(lost.value);
    EXPECT_GT(lost.generation, miss.generation);
    const auto ttl = admin.command({"PTTL", "concertd:cache:sm:7"});
    EXPECT_EQ(ttl.integer, -2);
}

// A use case's read: look up, load on a miss (counting loads, slowly), put.
asio::awaitable<void> read_through(RedisCatalogCache& cache, std::atomic<int>& loads,
                                   std::atomic<int>& served) {
    auto cached = co_await cache.seat_map(7, starting_now());
    if (!cached.value) {
        ++loads;
        co_await sleep_for(20ms);  // the database
        co_await cache.put_seat_map(7, std::make_shared<const domain::SeatMap>(seat_map_of(7, 50)),
                                    cached.generation);
    }
    ++served;
}

TEST_F(RedisCatalogCacheTest, OneLoaderPerKeyWithinAndAcrossProcesses) {
    std::atomic<int> loads{0};
    std::atomic<int> served{0};
    std::vector<std::thread> threads;
    std::atomic<bool> failed{false};
    for (int t = 0; t < 2; ++t) {
        threads.emplace_back([&] {
            try {
                CacheProcess process;
                std::vector<asio::awaitable<void>> readers;
                for (int i = 0; i < 20; ++i) {
                    readers.push_back(read_through(process.cache, loads, served));
                }
                run_all(process.io, std::move(readers));
            } catch (const std::exception& error) {
                std::fprintf(stderr, "reader failed: %s\n", error.what());
                failed = true;
            }
        });
    }
    for (auto& thread : threads) thread.join();
    ASSERT_FALSE(failed);
    EXPECT_EQ(served.load(), 40);
    EXPECT_EQ(loads.load(), 1);  // 40 concurrent misses, one database read
}

TEST_F(RedisCatalogCacheTest, WaitersLoadAnywayWhenTheLoaderNeverPuts) {
    CacheProcess process;
    std::atomic<int> misses{0};
    Clock::time_point started = Clock::now();
    auto reader = [&]() -> asio::awaitable<void> {
        const auto lookup = co_await process.cache.seat_map(404, starting_now());  // no such schedule
        if (!lookup.value) ++misses;
    };
    std::vector<asio::awaitable<void>> readers;
    for (int i = 0; i < 5; ++i) readers.push_back(reader());
    run_all(process.io, std::move(readers));
    EXPECT_EQ(misses.load(), 5);
    EXPECT_LT(Clock::now() - started, 5 * RedisCatalogCache::kLoadWaitMax);
}

}  // namespace
}  // namespace concertd::redis
