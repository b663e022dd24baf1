#include "adapters/redis/redis_client.hpp"

#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/system/system_error.hpp>
#include <cassert>
#include <cctype>
#include <charconv>
#include <deque>
#include <limits>
#include <mutex>
#include <span>
#include <stdexcept>
#include <unordered_map>
#include <utility>

#include "adapters/redis/detail/hiredis_codec.hpp"
#include "adapters/redis/detail/resp_writer.hpp"
#include "adapters/redis/detail/sha1.hpp"
#include "domain/outcome.hpp"

namespace concertd::redis {

namespace asio = boost::asio;
using asio::ip::tcp;
using domain::DependencyUnavailable;

namespace {

constexpr asio::as_tuple_t<asio::use_awaitable_t<>> kUseTuple{};
constexpr std::size_t kReadChunkBytes = 16 * 1024;
// A burst can grow the write buffers; give the memory back past this size.
constexpr std::size_t kBufferKeepBytes = 1024 * 1024;

// Redis names a script by the SHA-1 of its source, in hex.
std::string sha1_hex(std::string_view data) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string hex;
    hex.reserve(40);
    for (unsigned char byte : detail::sha1(data)) {
        hex += kHex[byte >> 4];
        hex += kHex[byte & 0xF];
    }
    return hex;
}

// What a client's links share; they may outlive the client.
struct Shared {
    explicit Shared(RedisOptions options_in) : options(std::move(options_in)) {}
    const RedisOptions options;
    // Set by a failure, cleared by a connect: a Redis that stays down is logged once as a
    // warning, not once per attempt.
    std::atomic<bool> failing{false};
};

using Clock = std::chrono::steady_clock;
// The completion handler of a caller asleep in wait().
using Waiter = asio::any_completion_handler<void(boost::system::error_code)>;

// A caller's place in the connection's FIFO: it sleeps in `waiter` until `done`. The deadline
// is watched by its link's one sweep timer, not by a timer of its own.
struct Request {
    Waiter waiter;                      // set while the caller sleeps
    asio::any_io_executor waiter_executor;  // where it wakes up
    Clock::time_point deadline;
    std::size_t expected = 0;  // replies
    std::size_t received = 0;
    RedisReply first;               // a single command's reply needs no vector
    std::vector<RedisReply> rest;   // a pipeline's later replies
    std::string failure;  // set with done when the connection was reset
    bool done = false;
    bool is_select = false;  // our SELECT ahead of the first command; nobody waits for it
};

// The vector API's strings as views, without a heap allocation for the usual few.
class Views {
public:
    explicit Views(const std::vector<std::string>& strings) {
        std::string_view* out = inline_.data();
        if (strings.size() > inline_.size()) {
            heap_.resize(strings.size());
            out = heap_.data();
        }
        for (std::size_t i = 0; i < strings.size(); ++i) out[i] = strings[i];
        span_ = {out, strings.size()};
    }
    Views(const Views&) = delete;  // span_ points into this object
    Views& operator=(const Views&) = delete;

    std::span<const std::string_view> span() const { return span_; }

private:
    std::array<std::string_view, 16> inline_;
    std::vector<std::string_view> heap_;
    std::span<const std::string_view> span_;
};

// Wakes the request's caller (if asleep) through its executor, never inline: the caller must not
// run inside the reader's or close()'s loop. Disarms its cancellation first, unless called from
// that cancellation handler itself.
void wake(Request& request, boost::system::error_code ec, bool clear_slot = true) {
    if (!request.waiter) return;
    Waiter waiter;
    waiter.swap(request.waiter);  // not operator=: Boost 1.81's move assignment does not compile
    if (auto slot = waiter.get_cancellation_slot(); clear_slot && slot.is_connected()) {
        slot.clear();
    }
    asio::post(request.waiter_executor,
               [waiter = std::move(waiter), ec]() mutable { waiter(ec); });
}

// co_await wait(request): until the request is done (replies, or its connection reset) or the
// caller's coroutine is cancelled (its replies, if they come, are then dropped). Then finish().
auto wait(std::shared_ptr<Request> request) {
    return asio::async_initiate<decltype(kUseTuple), void(boost::system::error_code)>(
        [](auto handler, std::shared_ptr<Request> request) {
            request->waiter_executor = asio::get_associated_executor(handler);
            Waiter waiter(std::move(handler));
            request->waiter.swap(waiter);
            if (request->done) {
                wake(*request, {});
                return;
            }
            if (auto slot = request->waiter.get_cancellation_slot(); slot.is_connected()) {
                slot.assign([weak = std::weak_ptr<Request>(request)](asio::cancellation_type) {
                    if (auto cancelled = weak.lock()) {
                        wake(*cancelled, asio::error::operation_aborted, false);
                    }
                });
            }
        },
        kUseTuple, std::move(request));
}

// After wait(): returns when every reply is there, else throws DependencyUnavailable (the
// connection was reset, by a timeout too) or the caller's own cancellation.
void finish(const Request& request, boost::system::error_code ec) {
    if (!request.done) {
        throw boost::system::system_error(
            ec ? ec : make_error_code(asio::error::operation_aborted));
    }
    if (!request.failure.empty()) throw DependencyUnavailable(request.failure);
    assert(request.received == request.expected);
}

}  // namespace

// One TCP connection and everything riding on it, touched only on its io_context's thread.
// Owned by the coroutines working on it (connect + writer, reader) and by handlers queued on
// that io_context, never by the client (it keeps a weak_ptr) nor by sleeping callers: so it is
// destroyed at the latest while its io_context shuts down, when Asio's services still exist.
// After close() it is dead for good; the client opens a new Link for the next call.
class Link : public std::enable_shared_from_this<Link> {
public:
    Link(asio::any_io_executor executor, std::shared_ptr<Shared> shared)
        : executor_(std::move(executor)),
          shared_(std::move(shared)),
          options_(&shared_->options),
          socket_(executor_),
          resolver_(executor_),
          connect_timer_(executor_),
          writer_wake_(executor_),
          deadline_timer_(executor_),
          read_buffer_(kReadChunkBytes) {}

    // With calls in flight only when its io_context shuts down. A sleeping caller's frame owns
    // its Request, which owns the caller's handler: drop the handlers, or that cycle leaks.
    ~Link() {
        for (const auto& request : pending_) Waiter().swap(request->waiter);
    }

    const asio::any_io_executor& executor() const { return executor_; }
    bool closed() const { return closed_; }

    // Queues a request for `replies` replies whose commands `encode(std::string&)` appends
    // to the write buffer; the caller then co_awaits wait(request) and calls finish(). Nothing
    // here suspends, so the order of pending_ is the order of the bytes in write_buffer_ even
    // with many callers on this thread. Callers reject empty commands first: an encoder may
    // only throw std::bad_alloc (the buffer is then restored).
    template <class Encode>
    std::shared_ptr<Request> submit(std::size_t replies, const Encode& encode) {
        assert(replies > 0);
        if (closed_) throw DependencyUnavailable("redis: connection was reset");
        if (replies_pending_ + replies > options_->pending_max) {
            throw DependencyUnavailable("redis: overloaded");
        }
        if (phase_ == Phase::kIdle) start_connect();
        auto request = std::make_shared<Request>();
        request->expected = replies;
        request->rest.reserve(replies - 1);
        const std::size_t before = write_buffer_.size();
        try {
            encode(write_buffer_);
        } catch (...) {
            write_buffer_.resize(before);
            throw;
        }
        push(request);
        if (writer_parked_) {
            writer_parked_ = false;
            writer_wake_.cancel();
        }
        return request;
    }

    // Closes the socket and fails every command in flight with `reason`. Idempotent.
    // `is_failure` false: a planned close, not worth a warning.
    void close(const std::string& reason, bool is_failure = true) {
        if (closed_) return;
        const bool was_connected = phase_ == Phase::kConnected;
        closed_ = true;
        phase_ = Phase::kClosed;
        const bool first_failure = is_failure && !shared_->failing.exchange(true);
        if (first_failure || (is_failure && was_connected)) {
            spdlog::warn("{}; connection to {}:{} reset", reason, options_->host, options_->port);
        } else {
            spdlog::debug("{}; connection to {}:{} reset", reason, options_->host,
                          options_->port);
        }
        boost::system::error_code ignored;
        socket_.close(ignored);  // also stops a range connect between endpoints
        resolver_.cancel();
        connect_timer_.cancel();
        writer_wake_.cancel();
        deadline_timer_.cancel();
        std::string().swap(write_buffer_);
        auto failed = std::move(pending_);
        pending_.clear();
        replies_pending_ = 0;
        for (const auto& request : failed) {
            request->failure = reason;
            request->done = true;
            wake(*request, {});
        }
    }

private:
    enum class Phase { kIdle, kConnecting, kConnected, kClosed };

    // Its bytes are already in write_buffer_. Its deadline is command_timeout from now.
    void push(const std::shared_ptr<Request>& request) {
        request->deadline = Clock::now() + options_->command_timeout;
        pending_.push_back(request);
        replies_pending_ += request->expected;
        arm_deadline();
    }

    // One timer per connection for every call's timeout. Deadlines grow along pending_ (one
    // timeout, a steady clock, FIFO), so only the oldest request's can be due: the timer waits
    // for it, and when it fires either that request is still unanswered (the connection is
    // reset, as a per-call timer would have done) or it waits again for the new oldest one.
    void arm_deadline() {
        if (deadline_armed_ || pending_.empty() || closed_) return;
        deadline_armed_ = true;
        deadline_timer_.expires_at(pending_.front()->deadline);
        deadline_timer_.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
            auto self = weak.lock();
            if (!self) return;
            self->deadline_armed_ = false;
            if (ec || self->closed_) return;
            if (!self->pending_.empty() && self->pending_.front()->deadline <= Clock::now()) {
                self->close("redis: no reply within " +
                            std::to_string(self->options_->command_timeout.count()) + " ms");
                return;
            }
            self->arm_deadline();
        });
    }

    void start_connect() {
        assert(phase_ == Phase::kIdle);
        phase_ = Phase::kConnecting;
        if (options_->database != 0) {
            // Ahead of every caller's command, so they all run in the chosen database.
            auto select = std::make_shared<Request>();
            select->expected = 1;
            select->is_select = true;
            const std::string database = std::to_string(options_->database);
            const std::string_view parts[] = {"SELECT", database};
            detail::append_command(write_buffer_, parts);
            push(select);
        }
        connect_timer_.expires_after(options_->connect_timeout);
        connect_timer_.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
            auto self = weak.lock();
            if (ec || !self || self->phase_ != Phase::kConnecting) return;
            self->close("redis: no connection within " +
                        std::to_string(self->options_->connect_timeout.count()) + " ms");
        });
        asio::co_spawn(executor_, connect_and_write(shared_from_this()), asio::detached);
    }

    // Connects, starts the reader, then flushes the write buffer until the link closes.
    static asio::awaitable<void> connect_and_write(std::shared_ptr<Link> self) {
        try {
            if (co_await self->connect()) co_await self->write_loop();
        } catch (const std::exception& e) {
            self->close(std::string("redis: ") + e.what());
        }
    }

    asio::awaitable<bool> connect() {
        const std::string port = std::to_string(options_->port);
        std::vector<tcp::endpoint> endpoints;
        boost::system::error_code ec;
        const auto address = asio::ip::make_address(options_->host, ec);
        if (!ec) {
            endpoints.emplace_back(address, options_->port);
        } else {
            auto [resolve_ec, results] =
                co_await resolver_.async_resolve(options_->host, port, kUseTuple);
            if (closed_) co_return false;
            if (resolve_ec) {
                close("redis: cannot resolve " + options_->host + ": " + resolve_ec.message());
                co_return false;
            }
            for (const auto& entry : results) endpoints.push_back(entry.endpoint());
        }
        auto [connect_ec, endpoint] = co_await asio::async_connect(socket_, endpoints, kUseTuple);
        if (closed_) {
            socket_.close(ec);
            co_return false;
        }
        if (connect_ec) {
            close("redis: cannot connect to " + options_->host + ":" + port + ": " +
                  connect_ec.message());
            co_return false;
        }
        connect_timer_.cancel();
        if (shared_->failing.exchange(false)) {
            spdlog::info("redis: connected to {}:{} again", options_->host, options_->port);
        }
        socket_.set_option(tcp::no_delay(true), ec);  // small commands must not wait for Nagle
        phase_ = Phase::kConnected;
        asio::co_spawn(executor_, read_replies(shared_from_this()), asio::detached);
        co_return true;
    }

    // The only writer: sends whatever accumulated since the last write, in one go.
    asio::awaitable<void> write_loop() {
        while (!closed_) {
            if (write_buffer_.empty()) {
                writer_wake_.expires_at(asio::steady_timer::time_point::max());
                writer_parked_ = true;
                co_await writer_wake_.async_wait(kUseTuple);  // cancel() is the wake-up
                writer_parked_ = false;
                continue;
            }
            writing_.clear();
            if (writing_.capacity() > kBufferKeepBytes) std::string().swap(writing_);
            std::swap(writing_, write_buffer_);
            auto [ec, written] = co_await asio::async_write(socket_, asio::buffer(writing_),
                                                            kUseTuple);
            if (closed_) co_return;
            if (ec) {
                close("redis: write failed: " + ec.message());
                co_return;
            }
        }
    }

    // The only reader: decodes replies and hands them to pending requests in FIFO order.
    static asio::awaitable<void> read_replies(std::shared_ptr<Link> self) {
        Link& link = *self;
        try {
            while (!link.closed_) {
                auto [ec, size] = co_await link.socket_.async_read_some(
                    asio::buffer(link.read_buffer_), kUseTuple);
                if (link.closed_) co_return;
                if (ec == asio::error::eof) {
                    link.close("redis: connection closed by the server");
                    co_return;
                }
                if (ec) {
                    link.close("redis: read failed: " + ec.message());
                    co_return;
                }
                link.reader_.feed(link.read_buffer_.data(), size);
                while (!link.closed_) {
                    std::optional<RedisReply> reply = link.reader_.get_reply();
                    if (!reply) break;
                    link.deliver(std::move(*reply));
                }
            }
        } catch (const detail::RedisProtocolError& e) {
            link.close(e.what());
        } catch (const std::exception& e) {
            link.close(std::string("redis: ") + e.what());
        }
    }

    void deliver(RedisReply reply) {
        if (pending_.empty()) {
            close("redis: a reply nobody asked for");
            return;
        }
        Request& front = *pending_.front();
        if (front.received == 0) {
            front.first = std::move(reply);
        } else {
            front.rest.push_back(std::move(reply));
        }
        ++front.received;
        assert(replies_pending_ > 0);
        --replies_pending_;
        if (front.received < front.expected) return;
        std::shared_ptr<Request> finished = std::move(pending_.front());
        pending_.pop_front();
        if (finished->is_select) {
            if (finished->first.is_error()) {
                close("redis: SELECT " + std::to_string(options_->database) +
                      " failed: " + finished->first.text);
            }
            return;
        }
        finished->done = true;
        wake(*finished, {});
    }

    asio::any_io_executor executor_;
    std::shared_ptr<Shared> shared_;
    const RedisOptions* options_;  // in *shared_
    tcp::socket socket_;
    tcp::resolver resolver_;
    asio::steady_timer connect_timer_;
    asio::steady_timer writer_wake_;
    asio::steady_timer deadline_timer_;
    Phase phase_ = Phase::kIdle;
    bool closed_ = false;
    bool writer_parked_ = false;   // in writer_wake_.async_wait: wake it by cancel()
    bool deadline_armed_ = false;  // deadline_timer_ waits for pending_.front()
    std::string write_buffer_;  // encoded commands not yet handed to the socket
    std::string writing_;       // the batch being written
    std::deque<std::shared_ptr<Request>> pending_;  // written or queued, replies outstanding
    std::size_t replies_pending_ = 0;
    detail::HiredisReader reader_;
    std::vector<char> read_buffer_;
};

struct RedisClient::State {
    explicit State(std::shared_ptr<Shared> shared_in) : shared(std::move(shared_in)) {}

    // The calling io_context's live link, or a new one (it connects on its first command). The
    // last answer is kept per OS thread, so a call takes no lock: while that link is alive and
    // not closed (closing is for good) it is the one the map holds for this io_context, because
    // the map replaces an entry only once its link expired or closed.
    std::shared_ptr<Link> link_for(const asio::any_io_executor& executor) {
        const asio::execution_context* context = &asio::query(executor, asio::execution::context);
        thread_local LastLink last;
        if (last.state == id && last.context == context) {
            if (auto link = last.link.lock(); link && !link->closed()) return link;
        }
        auto link = link_in_map(executor, context);
        last = {id, context, link};
        return link;
    }

    std::shared_ptr<Link> link_in_map(const asio::any_io_executor& executor,
                                      const asio::execution_context* context) {
        std::lock_guard lock(mutex);
        std::weak_ptr<Link>& slot = links[context];
        // closed() is read on the link's own thread: the key is the caller's io_context.
        if (auto link = slot.lock(); link && !link->closed()) return link;
        // An expired entry may also be a destroyed io_context whose address was reused.
        std::erase_if(links, [](const auto& entry) { return entry.second.expired(); });
        auto link = std::make_shared<Link>(executor, shared);
        links[context] = link;
        return link;
    }

    struct LastLink {
        std::uint64_t state = 0;
        const asio::execution_context* context = nullptr;
        std::weak_ptr<Link> link;
    };
    // Unique per State, so a thread's kept entry never matches a later client at the same address.
    static inline std::atomic<std::uint64_t> ids{0};
    const std::uint64_t id = ++ids;

    std::shared_ptr<Shared> shared;
    std::mutex mutex;  // guards links
    std::unordered_map<const asio::execution_context*, std::weak_ptr<Link>> links;
};

RedisScript::RedisScript(std::string source_text)
    : source(std::move(source_text)), sha1(sha1_hex(source)) {}

RedisOptions parse_redis_url(std::string_view url) {
    const auto invalid = [] {
        return std::invalid_argument("CONCERTD_REDIS_URL must be redis://host:port/db");
    };
    const auto parse_number = [&](std::string_view digits, long long max) {
        long long value = 0;
        const char* end = digits.data() + digits.size();
        auto [ptr, ec] = std::from_chars(digits.data(), end, value);
        if (digits.empty() || digits.size() > 10 || ec != std::errc() || ptr != end ||
            value < 0 || value > max) {
            throw invalid();
        }
        return value;
    };
    constexpr std::string_view kScheme = "redis://";
    if (!url.starts_with(kScheme)) throw invalid();
    std::string_view authority = url.substr(kScheme.size());
    std::string_view path;
    if (auto slash = authority.find('/'); slash != std::string_view::npos) {
        path = authority.substr(slash + 1);
        authority = authority.substr(0, slash);
    }
    std::string_view host = authority;
    std::string_view port;
    bool has_port = false;
    if (authority.starts_with('[')) {  // [IPv6]
        auto close = authority.find(']');
        if (close == std::string_view::npos) throw invalid();
        host = authority.substr(1, close - 1);
        std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') throw invalid();
            port = after.substr(1);
            has_port = true;
        }
        for (char c : host) {
            if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') {
                throw invalid();
            }
        }
    } else {
        if (auto colon = authority.find(':'); colon != std::string_view::npos) {
            host = authority.substr(0, colon);
            port = authority.substr(colon + 1);
            has_port = true;
        }
        for (char c : host) {
            if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' &&
                c != '_') {
                throw invalid();
            }
        }
    }
    if (host.empty()) throw invalid();

    RedisOptions options;
    options.host = std::string(host);
    if (has_port) {
        auto value = parse_number(port, 65535);
        if (value == 0) throw invalid();
        options.port = static_cast<std::uint16_t>(value);
    }
    if (!path.empty()) {
        options.database = static_cast<int>(parse_number(path, std::numeric_limits<int>::max()));
    }
    return options;
}

RedisClient::RedisClient(RedisOptions options) : options_(std::move(options)) {
    if (options_.host.empty() || options_.port == 0 || options_.database < 0 ||
        options_.connect_timeout.count() <= 0 || options_.command_timeout.count() <= 0 ||
        options_.pending_max == 0) {
        throw std::invalid_argument("redis: invalid options");
    }
    state_ = std::make_unique<State>(std::make_shared<Shared>(options_));
}

RedisClient::~RedisClient() {
    // Links outlive the client in their io_contexts' coroutines; ask each, on its own thread,
    // to close (a post is thread-safe). A link already gone means its io_context is done with
    // it; a posted close that never runs is destroyed with its io_context.
    std::vector<std::shared_ptr<Link>> live;
    {
        std::lock_guard lock(state_->mutex);
        for (auto& [context, weak] : state_->links) {
            if (auto link = weak.lock()) live.push_back(std::move(link));
        }
        state_->links.clear();
    }
    for (auto& link : live) {
        const asio::any_io_executor executor = link->executor();
        asio::post(executor, [link = std::move(link)] {
            link->close("redis: client destroyed", false);
        });
    }
}

// The public calls touch the client only before their first suspension: a call still waiting
// when the client is destroyed resumes on its link alone. They hold the link only until the
// command is queued: a sleeping caller must not own it (see ~Link); its reader and writer keep
// it alive while it has work.
boost::asio::awaitable<RedisReply> RedisClient::command(std::vector<std::string> argv) {
    if (argv.empty()) throw std::invalid_argument("redis: empty command");
    const Views parts(argv);
    auto request = state_->link_for(co_await asio::this_coro::executor)
                       ->submit(1, [&](std::string& out) {
                           detail::append_command(out, parts.span());
                       });
    auto [ec] = co_await wait(request);
    finish(*request, ec);
    co_return std::move(request->first);
}

boost::asio::awaitable<std::vector<RedisReply>> RedisClient::pipeline(
    std::vector<std::vector<std::string>> commands) {
    std::vector<RedisReply> replies;
    if (commands.empty()) co_return replies;
    for (const auto& argv : commands) {
        if (argv.empty()) throw std::invalid_argument("redis: empty command");
    }
    auto request = state_->link_for(co_await asio::this_coro::executor)
                       ->submit(commands.size(), [&](std::string& out) {
                           for (const auto& argv : commands) {
                               const Views parts(argv);
                               detail::append_command(out, parts.span());
                           }
                       });
    auto [ec] = co_await wait(request);
    finish(*request, ec);
    replies.reserve(commands.size());
    replies.push_back(std::move(request->first));
    for (auto& reply : request->rest) replies.push_back(std::move(reply));
    co_return replies;
}

boost::asio::awaitable<RedisReply> RedisClient::eval(const RedisScript& script,
                                                     std::vector<std::string> keys,
                                                     std::vector<std::string> args) {
    const Views key_views(keys);
    const Views arg_views(args);
    co_return co_await eval_views(script, key_views.span(), arg_views.span());
}

boost::asio::awaitable<RedisReply> RedisClient::eval_views(const RedisScript& script,
                                                           std::span<const std::string_view> keys,
                                                           std::span<const std::string_view> args) {
    std::weak_ptr<Link> weak;
    const auto send = [&](Link& link, std::string_view verb, std::string_view body) {
        return link.submit(1, [&](std::string& out) {
            detail::append_script_call(out, verb, body, keys, args);
        });
    };
    std::shared_ptr<Request> request;
    {
        std::shared_ptr<Link> link = state_->link_for(co_await asio::this_coro::executor);
        request = send(*link, "EVALSHA", script.sha1);
        weak = link;
    }
    auto [ec] = co_await wait(request);
    finish(*request, ec);
    if (request->first.is_error() && request->first.text.starts_with("NOSCRIPT")) {
        // EVAL also loads the script into Redis' cache: the next EVALSHA finds it.
        std::shared_ptr<Link> link = weak.lock();
        if (!link) throw DependencyUnavailable("redis: connection was reset");
        request = send(*link, "EVAL", script.source);
        link.reset();
        auto [eval_ec] = co_await wait(request);
        finish(*request, eval_ec);
    }
    co_return std::move(request->first);
}

boost::asio::awaitable<bool> RedisClient::ping() {
    try {
        RedisReply reply = co_await command({"PING"});
        co_return reply.type == RedisReply::Type::kStatus && reply.text == "PONG";
    } catch (const DependencyUnavailable&) {
        co_return false;
    }
}

}  // namespace concertd::redis
