#include "adapters/redis/read_barrier.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>
#include <charconv>
#include <chrono>
#include <functional>
#include <mutex>
#include <span>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "domain/outcome.hpp"

namespace concertd::redis {

namespace asio = boost::asio;
using domain::DependencyUnavailable;

namespace {

constexpr asio::as_tuple_t<asio::use_awaitable_t<>> kUseTuple{};

// KEYS: per token group its secret, aseq and active keys; then a version key and a value key per
// cache key. ARGV: the number of groups, then per group the secret its tokens' MACs were checked
// under, the number of tokens, and (user, seq) per token.
// Reply, flat: per group 1 if the secret is still Redis's (else 0) and a code per token (1 ACTIVE,
// 2 not live, 0 unsure); then per cache key its version ('' if none) and 1 if a value is stored.
// The token logic is kFind's ACTIVE branch in redis_waiting_queue.cpp, word for word; the branch
// for a token without an ACTIVE entry (a poll, with side effects) is left to the caller.
const RedisScript& barrier_script() {
    static const RedisScript script(R"lua(
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local out, a, k = {}, 2, 1
for g = 1, tonumber(ARGV[1]) do
    local secret_ok = redis.call('GET', KEYS[k]) == ARGV[a]
    local aseq, active = KEYS[k + 1], KEYS[k + 2]
    local n = tonumber(ARGV[a + 1])
    out[#out + 1] = secret_ok and 1 or 0
    a = a + 2
    for i = 1, n do
        local state = 0
        if secret_ok then
            local user = ARGV[a]
            local active_seq = redis.call('HGET', aseq, user)
            if active_seq then
                state = 2
                if tonumber(active_seq) == tonumber(ARGV[a + 1]) then
                    local expiry = redis.call('ZSCORE', active, user)
                    if expiry and tonumber(expiry) > now then state = 1 end
                end
            end
        end
        out[#out + 1] = state
        a = a + 2
    end
    k = k + 3
end
for i = k, #KEYS, 2 do
    out[#out + 1] = redis.call('GET', KEYS[i]) or ''
    out[#out + 1] = redis.call('EXISTS', KEYS[i + 1])
end
return out
)lua");
    return script;
}

struct TokenId {
    std::size_t group = 0;
    std::int64_t user = 0;
    std::uint64_t seq = 0;
    bool operator==(const TokenId&) const = default;
};

struct TokenIdHash {
    std::size_t operator()(const TokenId& id) const noexcept {
        const std::uint64_t mixed = (static_cast<std::uint64_t>(id.user) * 0x9E3779B97F4A7C15ULL) ^
                                    (id.seq + 0x632BE59BD9B4E019ULL * (id.group + 1));
        return static_cast<std::size_t>(mixed ^ (mixed >> 31));
    }
};

struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const noexcept {
        return std::hash<std::string_view>{}(text);
    }
};

constexpr std::size_t kDigitsMax = 20;  // of a 64-bit integer in decimal, sign included

// Unique per Core, so a thread's cached entry never matches a later Core at a reused address.
std::atomic<std::uint64_t> g_core_ids{0};

}  // namespace

// One barrier call's worth of registrations, and then its answers. Touched on one thread only.
struct ReadBarrier::Batch {
    // cancel() is the wake-up; the expiry only bounds a wait for an answer that never comes.
    Batch(const asio::any_io_executor& executor, std::chrono::milliseconds wait_max)
        : answered(executor, wait_max) {}

    struct TokenGroup {
        std::shared_ptr<const TokenKeys> keys;
        std::shared_ptr<const std::string> secret;
        std::vector<std::pair<std::int64_t, std::uint64_t>> tokens;  // (user, seq)
        std::vector<TokenCheck> answers;
    };
    struct Version {
        std::string version_key;
        std::string value_key;
        VersionCheck answer;
    };

    std::size_t entries() const { return token_index.size() + versions.size(); }

    // The token's place in this batch, added if new; nullopt when the batch is full.
    std::optional<std::pair<std::size_t, std::size_t>> add_token(
        std::shared_ptr<const TokenKeys> keys, std::shared_ptr<const std::string> secret,
        std::int64_t user, std::uint64_t seq) {
        std::size_t group = 0;
        while (group < groups.size() &&
               (groups[group].keys->secret != keys->secret || *groups[group].secret != *secret)) {
            ++group;
        }
        const TokenId id{group, user, seq};
        if (group < groups.size()) {
            if (const auto it = token_index.find(id); it != token_index.end()) {
                ++reads;
                return std::pair{group, it->second};
            }
        }
        if (entries() >= kBatchEntriesMax) return std::nullopt;
        if (group == groups.size()) {
            groups.push_back({std::move(keys), std::move(secret), {}, {}});
        }
        auto& tokens = groups[group].tokens;
        token_index.emplace(id, tokens.size());
        tokens.emplace_back(user, seq);
        ++reads;
        return std::pair{group, tokens.size() - 1};
    }

    // `waits`: a read will wait for this answer (else an expectation, which alone sends nothing).
    std::optional<std::size_t> add_version(std::string_view version_key, std::string_view value_key,
                                           bool waits = true) {
        if (const auto it = version_index.find(version_key); it != version_index.end()) {
            reads += waits ? 1 : 0;
            return it->second;
        }
        if (entries() >= kBatchEntriesMax) return std::nullopt;
        version_index.emplace(version_key, versions.size());
        versions.push_back({std::string(version_key), std::string(value_key), {}});
        reads += waits ? 1 : 0;
        return versions.size() - 1;
    }

    // The answer for a key this call asked about, if it was answered.
    std::optional<VersionCheck> answered_version(std::string_view version_key) const {
        if (!done || !failure.empty()) return std::nullopt;
        const auto it = version_index.find(version_key);
        if (it == version_index.end()) return std::nullopt;
        return versions[it->second].answer;
    }

    // The script's KEYS and ARGV for this batch: views into the batch and into `digits`, which
    // is sized once up front so the views of the numbers written into it stay valid.
    void command(std::vector<std::string_view>& keys, std::vector<std::string_view>& args,
                 std::string& digits) const {
        keys.reserve(3 * groups.size() + 2 * versions.size());
        args.reserve(1 + 2 * groups.size() + 2 * token_index.size());
        digits.resize(kDigitsMax * (1 + groups.size() + 2 * token_index.size()));
        char* out = digits.data();
        const auto number = [&](auto value) {
            char* begin = out;
            out = std::to_chars(out, digits.data() + digits.size(), value).ptr;
            return std::string_view(begin, static_cast<std::size_t>(out - begin));
        };
        args.push_back(number(groups.size()));
        for (const auto& group : groups) {
            keys.push_back(group.keys->secret);
            keys.push_back(group.keys->aseq);
            keys.push_back(group.keys->active);
            args.push_back(*group.secret);
            args.push_back(number(group.tokens.size()));
            for (const auto& [user, seq] : group.tokens) {
                args.push_back(number(user));
                args.push_back(number(seq));
            }
        }
        for (const auto& version : versions) {
            keys.push_back(version.version_key);
            keys.push_back(version.value_key);
        }
    }

    // Fills the answers from the script's reply; a message when the reply is not one.
    std::string read_answers(const RedisReply& reply) {
        if (reply.is_error()) return "redis: read barrier failed: " + reply.text;
        std::size_t expected = 2 * versions.size();
        for (const auto& group : groups) expected += 1 + group.tokens.size();
        const auto unexpected = std::string("redis: unexpected reply to the read barrier");
        if (reply.type != RedisReply::Type::kArray || reply.elements.size() != expected) {
            return unexpected;
        }
        std::size_t at = 0;
        for (auto& group : groups) {
            if (reply.elements[at++].type != RedisReply::Type::kInteger) return unexpected;
            group.answers.reserve(group.tokens.size());
            for (std::size_t i = 0; i < group.tokens.size(); ++i) {
                const RedisReply& code = reply.elements[at++];
                if (code.type != RedisReply::Type::kInteger) return unexpected;
                group.answers.push_back(code.integer == 1   ? TokenCheck::kActive
                                        : code.integer == 2 ? TokenCheck::kNotLive
                                                            : TokenCheck::kUnsure);
            }
        }
        for (auto& version : versions) {
            const RedisReply& text = reply.elements[at++];
            const RedisReply& exists = reply.elements[at++];
            if (text.type != RedisReply::Type::kString ||
                exists.type != RedisReply::Type::kInteger) {
                return unexpected;
            }
            if (!text.text.empty()) {
                std::uint64_t value = 0;
                const char* end = text.text.data() + text.text.size();
                const auto [ptr, ec] = std::from_chars(text.text.data(), end, value);
                if (ec != std::errc() || ptr != end) return unexpected;
                version.answer.version = value;
            }
            version.answer.value_exists = exists.integer == 1;
        }
        return {};
    }

    std::vector<TokenGroup> groups;  // one per (queue, secret); in practice one
    std::unordered_map<TokenId, std::size_t, TokenIdHash> token_index;  // → index in its group
    std::vector<Version> versions;
    // version key → index; looked up by string_view (a read's key is not copied unless new)
    std::unordered_map<std::string, std::size_t, StringHash, std::equal_to<>> version_index;
    std::size_t reads = 0;  // registrations waiting for the answer, duplicates included

    std::chrono::steady_clock::time_point sent_at;  // just before its bytes were made
    bool done = false;
    std::string failure;  // set with done when the call failed
    asio::steady_timer answered;
};

// A thread's barrier state. Kept alive by the reads waiting on it and its sender; when idle it
// holds nothing and is dropped (the next read makes a new one).
struct ReadBarrier::Thread {
    // The registrations for the next call, sent once the call in flight returned.
    std::shared_ptr<Batch> next;
    // The last call answered without failure: it serves version checks of reads that began
    // before it was sent (check_version).
    std::shared_ptr<const Batch> last_answered;
    bool sending = false;       // a sender coroutine runs
    std::uint64_t senders = 0;  // senders started, so a finished one never clears a newer one

    const std::shared_ptr<Batch>& next_batch(const asio::any_io_executor& executor,
                                             std::chrono::milliseconds wait_max) {
        if (!next) next = std::make_shared<Batch>(executor, wait_max);
        return next;
    }
};

struct ReadBarrier::Core {
    // The calling io_context's state, or a new one. The last answer is kept per OS thread, so
    // a read takes no lock: it is the entry the map holds for (this core, this io_context) as
    // long as it is alive, because the map replaces an entry only once it expired.
    std::shared_ptr<Thread> thread_for(const asio::any_io_executor& executor) {
        const asio::execution_context* context = &asio::query(executor, asio::execution::context);
        thread_local LastThread last;
        if (last.core == id && last.context == context) {
            if (auto thread = last.thread.lock()) return thread;
        }
        auto thread = thread_in_map(context);
        last = {id, context, thread};
        return thread;
    }

    std::shared_ptr<Thread> thread_in_map(const asio::execution_context* context) {
        std::lock_guard lock(mutex);
        if (const auto it = threads.find(context); it != threads.end()) {
            if (auto thread = it->second.lock()) return thread;
        }
        // An expired entry may also be a destroyed io_context whose address was reused.
        std::erase_if(threads, [](const auto& entry) { return entry.second.expired(); });
        auto thread = std::make_shared<Thread>();
        threads[context] = thread;
        return thread;
    }

    struct LastThread {
        std::uint64_t core = 0;
        const asio::execution_context* context = nullptr;
        std::weak_ptr<Thread> thread;
    };

    const std::uint64_t id = ++g_core_ids;
    std::mutex mutex;  // guards threads; never held across a co_await or a co_spawn
    std::unordered_map<const asio::execution_context*, std::weak_ptr<Thread>> threads;

    std::atomic<std::uint64_t> calls{0};
    std::atomic<std::uint64_t> reads{0};
    std::atomic<std::uint64_t> tokens{0};
    std::atomic<std::uint64_t> versions{0};
    std::atomic<std::uint64_t> full{0};
    std::atomic<std::uint64_t> early{0};
};

ReadBarrier::ReadBarrier(RedisClient& client)
    : client_(client),
      core_(std::make_shared<Core>()),
      // The call in flight, then the batch's own call, each bounded by the command timeout.
      answer_wait_max_(2 * client.options().command_timeout + kAnswerWaitSlack) {}

ReadBarrier::~ReadBarrier() = default;

asio::awaitable<TokenCheck> ReadBarrier::check_token(std::shared_ptr<const TokenKeys> keys,
                                                     std::shared_ptr<const std::string> secret,
                                                     std::int64_t user, std::uint64_t seq) {
    const auto executor = co_await asio::this_coro::executor;
    std::shared_ptr<Thread> thread = core_->thread_for(executor);
    std::shared_ptr<Batch> batch = thread->next_batch(executor, answer_wait_max_);
    const auto place = batch->add_token(std::move(keys), std::move(secret), user, seq);
    if (!place) {
        core_->full.fetch_add(1, std::memory_order_relaxed);
        co_return TokenCheck::kUnsure;
    }
    start_sender(client_, core_, thread, executor);
    boost::system::error_code ec;
    if (!batch->done) std::tie(ec) = co_await batch->answered.async_wait(kUseTuple);
    throw_unless_answered(*batch, ec);
    co_return batch->groups[place->first].answers[place->second];
}

asio::awaitable<VersionCheck> ReadBarrier::check_version(
    std::string_view version_key, std::string_view value_key,
    std::chrono::steady_clock::time_point since) {
    const auto executor = co_await asio::this_coro::executor;
    std::shared_ptr<Thread> thread = core_->thread_for(executor);
    // Its bytes were made after this read began, as the next call's would be (the clock is
    // monotonic and both stamps are taken on this thread).
    if (const auto& last = thread->last_answered; last && last->sent_at > since) {
        if (auto answer = last->answered_version(version_key)) {
            core_->early.fetch_add(1, std::memory_order_relaxed);
            co_return *answer;
        }
    }
    std::shared_ptr<Batch> batch = thread->next_batch(executor, answer_wait_max_);
    const auto place = batch->add_version(version_key, value_key);
    if (!place) {
        core_->full.fetch_add(1, std::memory_order_relaxed);
        co_return VersionCheck{};
    }
    start_sender(client_, core_, thread, executor);
    boost::system::error_code ec;
    if (!batch->done) std::tie(ec) = co_await batch->answered.async_wait(kUseTuple);
    throw_unless_answered(*batch, ec);
    co_return batch->versions[*place].answer;
}

asio::awaitable<std::vector<VersionCheck>> ReadBarrier::check_versions(
    std::span<const VersionKeys> keys, std::chrono::steady_clock::time_point since) {
    const auto executor = co_await asio::this_coro::executor;
    std::shared_ptr<Thread> thread = core_->thread_for(executor);
    std::vector<VersionCheck> answers(keys.size());
    const Batch* last = thread->last_answered && thread->last_answered->sent_at > since
                            ? thread->last_answered.get()
                            : nullptr;  // as in check_version
    std::shared_ptr<Batch> batch;
    std::vector<std::pair<std::size_t, std::size_t>> waiting;  // (key, its place in the batch)
    for (std::size_t i = 0; i < keys.size(); ++i) {
        if (last) {
            if (auto answer = last->answered_version(keys[i].version_key)) {
                core_->early.fetch_add(1, std::memory_order_relaxed);
                answers[i] = *answer;
                continue;
            }
        }
        if (!batch) batch = thread->next_batch(executor, answer_wait_max_);
        // One read, however many keys: the first key it registers counts it.
        const auto place = batch->add_version(keys[i].version_key, keys[i].value_key, waiting.empty());
        if (!place) {  // full: an empty check, the caller takes its own path for this key
            core_->full.fetch_add(1, std::memory_order_relaxed);
            continue;
        }
        waiting.emplace_back(i, *place);
    }
    if (waiting.empty()) co_return answers;
    start_sender(client_, core_, thread, executor);
    boost::system::error_code ec;
    if (!batch->done) std::tie(ec) = co_await batch->answered.async_wait(kUseTuple);
    throw_unless_answered(*batch, ec);
    for (const auto& [key, place] : waiting) answers[key] = batch->versions[place].answer;
    co_return answers;
}

asio::awaitable<void> ReadBarrier::expect_version(std::string_view version_key,
                                                  std::string_view value_key) {
    const VersionKeys keys[] = {{version_key, value_key}};
    co_await expect_versions(keys);
}

asio::awaitable<void> ReadBarrier::expect_versions(std::span<const VersionKeys> keys) {
    const auto executor = co_await asio::this_coro::executor;
    std::shared_ptr<Thread> thread = core_->thread_for(executor);
    const std::shared_ptr<Batch> batch = thread->next_batch(executor, answer_wait_max_);
    bool added = false;
    for (const VersionKeys& key : keys) {
        // Full: the read's check makes its own registration, as without the hint.
        if (!batch->add_version(key.version_key, key.value_key, false)) break;
        added = true;
    }
    // The sender keeps the thread's state alive until the read's token check joins this batch;
    // it sends only after the handlers queued now have run, and nothing if no read waits.
    if (added) start_sender(client_, core_, thread, executor);
}

void ReadBarrier::start_sender(RedisClient& client, const std::shared_ptr<Core>& core,
                               const std::shared_ptr<Thread>& thread,
                               const asio::any_io_executor& executor) {
    if (thread->sending) return;
    thread->sending = true;
    const std::uint64_t sender = ++thread->senders;
    // May run right here up to its first suspension: nothing is locked, the batch is ready.
    asio::co_spawn(executor, send_batches(client, core, thread, sender), asio::detached);
}

void ReadBarrier::throw_unless_answered(const Batch& batch, boost::system::error_code ec) {
    if (!batch.done) {
        if (!ec) throw DependencyUnavailable("redis: no answer from the read barrier in time");
        throw boost::system::system_error(ec);  // the caller's own cancellation
    }
    if (!batch.failure.empty()) throw DependencyUnavailable(batch.failure);
}

asio::awaitable<void> ReadBarrier::send_batches(RedisClient& client, std::shared_ptr<Core> core,
                                                std::shared_ptr<Thread> thread,
                                                std::uint64_t sender) {
    // However this frame ends (also destroyed with its io_context), the thread has no sender.
    struct Idle {
        Thread& thread;
        std::uint64_t sender;
        ~Idle() {
            if (thread.senders == sender) thread.sending = false;
        }
    } idle{*thread, sender};
    const auto executor = co_await asio::this_coro::executor;
    for (;;) {
        // Let the handlers already queued run first (reads just woken by the last answer, requests
        // already read from their sockets): they join this call instead of waiting for the next.
        co_await asio::post(executor, asio::use_awaitable);
        std::shared_ptr<Batch> batch = std::exchange(thread->next, nullptr);
        if (!batch || batch->reads == 0) {  // none, or expectations no read came to wait for
            thread->sending = false;  // now, not when the frame goes: the next read starts one
            co_return;
        }
        batch->sent_at = std::chrono::steady_clock::now();
        co_await send(client, *core, *batch);
        batch->done = true;
        if (batch->failure.empty()) thread->last_answered = batch;
        batch->answered.cancel();
    }
}

asio::awaitable<void> ReadBarrier::send(RedisClient& client, Core& core, Batch& batch) {
    core.calls.fetch_add(1, std::memory_order_relaxed);
    core.reads.fetch_add(batch.reads, std::memory_order_relaxed);
    core.tokens.fetch_add(batch.token_index.size(), std::memory_order_relaxed);
    core.versions.fetch_add(batch.versions.size(), std::memory_order_relaxed);
    // Whatever goes wrong, the batch gets a failure: its reads must not wait for nothing.
    std::string failure = "redis: read barrier failed";
    try {
        std::vector<std::string_view> keys;
        std::vector<std::string_view> args;
        std::string digits;
        batch.command(keys, args, digits);
        const RedisReply reply =
            co_await client.eval(barrier_script(), std::span<const std::string_view>(keys),
                                 std::span<const std::string_view>(args));
        failure = batch.read_answers(reply);
    } catch (const std::exception& error) {
        if (*error.what() != '\0') failure = error.what();
    } catch (...) {
    }
    batch.failure = std::move(failure);
}

ReadBarrier::Counters ReadBarrier::counters() const {
    return {core_->calls.load(std::memory_order_relaxed),
            core_->reads.load(std::memory_order_relaxed),
            core_->tokens.load(std::memory_order_relaxed),
            core_->versions.load(std::memory_order_relaxed),
            core_->full.load(std::memory_order_relaxed),
            core_->early.load(std::memory_order_relaxed)};
}

}  // namespace concertd::redis
