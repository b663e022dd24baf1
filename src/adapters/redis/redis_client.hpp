// A Redis client for the I/O threads: hiredis only as the RESP codec (redisFormatCommandArgv,
// redisReader*), over our own Asio socket, one connection per io_context, commands pipelined
// and matched to replies in FIFO order, a timeout on every call (STYLE.md: hiredis notes).
// Nothing here blocks a thread; a coroutine's commands go out on its own thread's connection.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
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

class RedisClient {
public:
    explicit RedisClient(RedisOptions options);
    ~RedisClient();
    RedisClient(const RedisClient&) = delete;
    RedisClient& operator=(const RedisClient&) = delete;

    // Sends one command on the calling io_context's connection (opened, or reopened after a
    // failure, on first use) and returns its reply; an error reply is returned, not thrown.
    // Throws domain::DependencyUnavailable when Redis cannot be reached or does not answer
    // within command_timeout; the connection is then reset and every command in flight on it
    // fails the same way.
    boost::asio::awaitable<RedisReply> command(std::vector<std::string> argv);

    // Several commands written together; their replies in order.
    boost::asio::awaitable<std::vector<RedisReply>> pipeline(
        std::vector<std::vector<std::string>> commands);

    // EVALSHA, or EVAL when Redis does not know the script yet.
    boost::asio::awaitable<RedisReply> eval(const RedisScript& script,
                                            std::vector<std::string> keys,
                                            std::vector<std::string> args);

    // PING answered PONG (for /readyz); false instead of throwing.
    boost::asio::awaitable<bool> ping();

    const RedisOptions& options() const { return options_; }

    struct State;

private:
    RedisOptions options_;
    std::unique_ptr<State> state_;
};

}  // namespace concertd::redis
