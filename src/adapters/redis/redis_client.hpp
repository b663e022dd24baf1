// A Redis client for the I/O threads: commands encoded by detail/resp_writer, replies decoded by
// hiredis (redisReader*), over our own Asio socket, one connection per io_context, commands
// pipelined and matched to replies in FIFO order, a timeout on every call (STYLE.md: hiredis
// notes).
// Nothing here blocks a thread; a coroutine's commands go out on its own thread's connection.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace concertd::redis {

// A reply, owned.
struct RedisReply {
    enum class Type { kNil, kInteger, kString, kStatus, kError, kArray };
    Type type = Type::kNil;
    std::int64_t integer = 0;
    std::string text;  // kString, kStatus, kError
    std::vector<RedisReply> elements;

    bool is_nil() const { return type == Type::kNil; }
    bool is_error() const { return type == Type::kError; }
};

// A Lua script and its SHA1, for EVALSHA with a fallback to EVAL on NOSCRIPT.
struct RedisScript {
    explicit RedisScript(std::string source);
    std::string source;
    std::string sha1;  // hex
};

struct RedisOptions {
    std::string host = "127.0.0.1";  // numeric address or a name resolved asynchronously
    std::uint16_t port = 6379;
    int database = 0;
    std::chrono::milliseconds connect_timeout{1000};
    std::chrono::milliseconds command_timeout{1000};
    std::size_t pending_max = 10'000;  // commands in flight per connection before callers fail
};

// "redis://host:port/db" (port and db optional). Throws std::invalid_argument with a message.
RedisOptions parse_redis_url(std::string_view url);

// Thread-safe: any number of threads, each running its own io_context, may call it at once.
// Each io_context gets its own connection; its state is only touched on that io_context's
// thread, so an io_context must be run by one thread (this codebase's rule).
//
// Lifetime: the connections belong to coroutines on their io_contexts, not to the client, so
// the client may be destroyed before or after its io_contexts (a connection dies, at the
// latest, with its io_context, while Asio's services still exist). Destroying the client posts
// a close to each live connection: calls still waiting then fail with DependencyUnavailable.
// Not allowed: destroying the client while one of its io_contexts is being destroyed on
// another thread.
class RedisClient {
public:
    // Throws std::invalid_argument for an empty host, port 0, a negative database, a timeout
    // <= 0 or pending_max 0. Connects lazily, on each io_context's first command.
    explicit RedisClient(RedisOptions options);
    ~RedisClient();
    RedisClient(const RedisClient&) = delete;
    RedisClient& operator=(const RedisClient&) = delete;

    // Sends one command on the calling io_context's connection (opened, or reopened after a
    // failure, on first use) and returns its reply; an error reply is returned, not thrown.
    // Throws domain::DependencyUnavailable when Redis cannot be reached or does not answer
    // within command_timeout; the connection is then reset and every command in flight on it
    // fails the same way. Also throws it ("redis: overloaded") when pending_max replies are
    // outstanding on this io_context's connection, std::invalid_argument for an empty argv, and
    // boost::system::system_error (operation_aborted) when the caller's coroutine is cancelled.
    boost::asio::awaitable<RedisReply> command(std::vector<std::string> argv);

    // Several commands written together; their replies in order. An error reply in the
    // middle does not stop the rest (for all-or-nothing, send MULTI ... EXEC or use eval()).
    boost::asio::awaitable<std::vector<RedisReply>> pipeline(
        std::vector<std::vector<std::string>> commands);

    // EVALSHA, or EVAL when Redis does not know the script yet (NOSCRIPT); EVAL caches it.
    // `script` must outlive the call (co_await it in the same full-expression).
    boost::asio::awaitable<RedisReply> eval(const RedisScript& script,
                                            std::vector<std::string> keys,
                                            std::vector<std::string> args);

    // The same with nothing copied: the script, the views and what they point to must stay
    // valid until the call completes (a NOSCRIPT resends them). The source goes out only then.
    // A template only so that eval(script, {}, {}) still picks the overload above.
    template <class = void>
    boost::asio::awaitable<RedisReply> eval(const RedisScript& script,
                                            std::span<const std::string_view> keys,
                                            std::span<const std::string_view> args) {
        return eval_views(script, keys, args);
    }

    // PING answered PONG (for /readyz); false instead of throwing.
    boost::asio::awaitable<bool> ping();

    const RedisOptions& options() const { return options_; }

    struct State;

private:
    boost::asio::awaitable<RedisReply> eval_views(const RedisScript& script,
                                                  std::span<const std::string_view> keys,
                                                  std::span<const std::string_view> args);

    RedisOptions options_;
    std::unique_ptr<State> state_;
};

}  // namespace concertd::redis
