#include "adapters/mysql/detail/mysql_connection.hpp"

#include <mysql.h>
#include <poll.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <array>
#include <cassert>
#include <charconv>
#include <functional>
#include <unordered_map>

#include "adapters/call_in_flight.hpp"
#include "adapters/socket_wait.hpp"
#include "domain/outcome.hpp"

namespace concertd::mysql::detail {

namespace asio = boost::asio;

namespace {

// Column values are fetched into buffers of this size; a longer one is fetched again whole.
constexpr unsigned long kCellBufferBytes = 256;

[[noreturn]] void throw_unavailable(std::string_view what) {
    throw domain::DependencyUnavailable("mysql: " + std::string(what));
}

// The server (or the way to it) in trouble, not the statement: client-side errors (CR_*, 2000
// to 2999: server gone, lost, out of sync...), and the server shutting down, killing the
// connection, out of connections, or out of resources.
bool is_connection_failure(unsigned code) {
    return (code >= 2000 && code < 3000) || code == 1053 /* ER_SERVER_SHUTDOWN */ ||
           code == 1927 /* ER_CONNECTION_KILLED */ || code == 1040 /* ER_CON_COUNT_ERROR */ ||
           code == 1152 /* ER_ABORTING_CONNECTION */ || code == 1077 /* ER_NORMAL_SHUTDOWN */ ||
           code == 1041 /* ER_OUT_OF_RESOURCES */;
}

struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const {
        return std::hash<std::string_view>{}(text);
    }
};

std::string percent_decode(std::string_view text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '%' && i + 2 < text.size()) {
            unsigned value = 0;
            auto [end, error] = std::from_chars(text.data() + i + 1, text.data() + i + 3, value, 16);
            if (error != std::errc{} || end != text.data() + i + 3) {
                throw std::invalid_argument("bad percent-escape in the URL");
            }
            out += static_cast<char>(value);
            i += 2;
        } else {
            out += text[i];
        }
    }
    return out;
}

}  // namespace

// --- the URL -------------------------------------------------------------------------------

MysqlEndpoint parse_mysql_url(std::string_view url) {
    constexpr std::string_view kScheme = "mysql://";
    if (!url.starts_with(kScheme)) throw std::invalid_argument("expected mysql://");
    std::string_view rest = url.substr(kScheme.size());
    MysqlEndpoint endpoint;
    auto slash = rest.find('/');
    if (slash == std::string_view::npos || slash + 1 >= rest.size()) {
        throw std::invalid_argument("expected mysql://user:password@host:port/database");
    }
    std::string_view authority = rest.substr(0, slash);
    std::string_view database = rest.substr(slash + 1);
    if (auto query = database.find('?'); query != std::string_view::npos) {
        throw std::invalid_argument("URL parameters are not supported");
    }
    endpoint.database = percent_decode(database);
    if (auto at = authority.rfind('@'); at != std::string_view::npos) {
        std::string_view credentials = authority.substr(0, at);
        authority = authority.substr(at + 1);
        auto colon = credentials.find(':');
        endpoint.user = percent_decode(credentials.substr(0, colon));
        if (colon != std::string_view::npos) {
            endpoint.password = percent_decode(credentials.substr(colon + 1));
        }
    }
    if (endpoint.user.empty()) throw std::invalid_argument("the URL names no user");
    std::string_view host = authority;
    if (auto colon = authority.rfind(':'); colon != std::string_view::npos) {
        host = authority.substr(0, colon);
        std::string_view port = authority.substr(colon + 1);
        unsigned value = 0;
        auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), value);
        if (error != std::errc{} || end != port.data() + port.size() || value == 0 ||
            value > 65535) {
            throw std::invalid_argument("bad port '" + std::string(port) + "'");
        }
        endpoint.port = value;
    }
    if (host.empty()) throw std::invalid_argument("the URL names no host");
    endpoint.host = std::string(host);
    return endpoint;
}

// --- MysqlResult ---------------------------------------------------------------------------

const MysqlResult::Cell& MysqlResult::cell(int row, int column) const {
    assert(row >= 0 && row < rows_ && column >= 0 && column < columns_);
    return cells_[static_cast<std::size_t>(row) * columns_ + column];
}

bool MysqlResult::is_null(int row, int column) const { return cell(row, column).length < 0; }

std::string_view MysqlResult::text(int row, int column) const {
    const Cell& c = cell(row, column);
    if (c.length < 0) return {};
    return {data_.data() + c.offset, static_cast<std::size_t>(c.length)};
}

std::int64_t MysqlResult::int64(int row, int column) const {
    std::string_view value = text(row, column);
    std::int64_t number = 0;
    auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), number);
    if (error != std::errc{} || end != value.data() + value.size() || value.empty()) {
        throw std::runtime_error("mysql: column " + std::to_string(column) +
                                 " is not an integer: '" + std::string(value) + "'" +
                                 (is_null(row, column) ? " (NULL)" : ""));
    }
    return number;
}

std::optional<std::int64_t> MysqlResult::optional_int64(int row, int column) const {
    if (is_null(row, column)) return std::nullopt;
    return int64(row, column);
}

void MysqlResult::add_cell(std::optional<std::string_view> value) {
    Cell c;
    if (value) {
        c.offset = static_cast<std::uint32_t>(data_.size());
        c.length = static_cast<std::int32_t>(value->size());
        data_.append(*value);
    }
    cells_.push_back(c);
    if (cells_.size() % columns_ == 0) rows_ = static_cast<int>(cells_.size() / columns_);
}

// --- MysqlConnection -----------------------------------------------------------------------

struct MysqlConnection::Impl {
    MYSQL* mysql = nullptr;
    // Wraps mysql_get_socket() only for the length of one call, on the caller's executor;
    // released, never closed (libmariadb owns the socket).
    std::optional<asio::posix::stream_descriptor> socket;
    // SQL text → its prepared statement on this connection.
    std::unordered_map<std::string, MYSQL_STMT*, StringHash, std::equal_to<>> prepared;
    app::Counter* round_trips = nullptr;  // /metrics: concertd_db_round_trips_total
    bool broken = false;
    bool in_flight = false;

    Impl() = default;
    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;
    ~Impl() {
        release_socket();
        if (!mysql) return;
        // mysql_close first: it detaches the statements, whose close then frees memory only
        // (no COM_STMT_CLOSE round trips).
        mysql_close(mysql);
        for (auto& [sql, stmt] : prepared) mysql_stmt_close(stmt);
    }

    void wrap_socket(const asio::any_io_executor& executor) {
        int fd = static_cast<int>(mysql_get_socket(mysql));
        if (fd < 0) fail("no socket");
        if (socket && socket->native_handle() == fd) return;
        release_socket();
        socket.emplace(executor);
        boost::system::error_code error;
        socket->assign(fd, error);
        if (error) {
            socket.reset();
            broken = true;
            throw_unavailable("cannot watch the socket: " + error.message());
        }
    }

    void release_socket() {
        if (!socket) return;
        socket->release();
        socket.reset();
    }

    [[noreturn]] void fail(std::string_view context) {
        broken = true;
        throw_unavailable(std::string(context) + ": " + mysql_error(mysql) + " [" +
                          std::to_string(mysql_errno(mysql)) + "]");
    }

    void count_round_trip() {
        if (round_trips) round_trips->add();
    }

    // Waits for what libmariadb asked for (MYSQL_WAIT_* bits) and returns what happened. The
    // library's own timeouts are not set: `deadline` bounds the whole call instead, and its
    // expiry marks the connection broken (its state on the wire is unknown).
    asio::awaitable<int> wait(int status, asio::steady_timer& deadline, std::string_view what,
                              std::chrono::milliseconds timeout) {
        wrap_socket(co_await asio::this_coro::executor);
        short events = 0;
        if (status & (MYSQL_WAIT_READ | MYSQL_WAIT_EXCEPT)) events |= POLLIN;
        if (status & MYSQL_WAIT_WRITE) events |= POLLOUT;
        if (events == 0) events = POLLIN;  // only a timeout asked for: none is ever set
        while (true) {
            if (!co_await adapters::wait_socket(*socket, events, deadline)) {
                broken = true;
                throw_unavailable(std::string(what) + " timed out after " +
                                  std::to_string(timeout.count()) + " ms");
            }
            short revents = adapters::ready_now(socket->native_handle(), events);
            int happened = 0;
            if (revents & (POLLIN | POLLHUP | POLLERR)) happened |= MYSQL_WAIT_READ;
            if (revents & POLLOUT) happened |= MYSQL_WAIT_WRITE;
            if (happened != 0) co_return happened;
        }
    }

    // Runs one libmariadb call to its end: `start()` and then `resume(ready)` until either
    // returns 0 (nothing more to wait for).
    template <class Start, class Resume>
    asio::awaitable<void> drive(Start start, Resume resume, asio::steady_timer& deadline,
                                std::string_view what, std::chrono::milliseconds timeout) {
        int status = start();
        while (status != 0) status = resume(co_await wait(status, deadline, what, timeout));
    }

    asio::awaitable<void> rollback(asio::steady_timer& deadline,
                                   std::chrono::milliseconds timeout) {
        int error = 0;
        count_round_trip();
        co_await drive([&] { return mysql_real_query_start(&error, mysql, "ROLLBACK", 8); },
                       [&](int ready) { return mysql_real_query_cont(&error, mysql, ready); },
                       deadline, "rollback", timeout);
        if (error != 0) fail("rollback after a failed statement");
    }

    // A statement failed with `code`: a lost or refusing server is the dependency's failure;
    // anything else is the statement's, after rolling back an open transaction.
    asio::awaitable<void> refuse(unsigned code, std::string message, asio::steady_timer& deadline,
                                 std::chrono::milliseconds timeout) {
        message = "mysql: " + message + " [" + std::to_string(code) + "]";
        if (is_connection_failure(code)) {
            broken = true;
            throw domain::DependencyUnavailable(message);
        }
        if (in_transaction()) co_await rollback(deadline, timeout);
        throw MysqlError(code, message);
    }

    bool in_transaction() const {
        unsigned int status = 0;
        mariadb_get_infov(mysql, MARIADB_CONNECTION_SERVER_STATUS, &status);
        return (status & SERVER_STATUS_IN_TRANS) != 0;
    }

    asio::awaitable<MYSQL_STMT*> statement(std::string_view sql, asio::steady_timer& deadline,
                                           std::chrono::milliseconds timeout);
    asio::awaitable<void> fetch_rows(MYSQL_STMT* stmt, MysqlResult& result,
                                     asio::steady_timer& deadline,
                                     std::chrono::milliseconds timeout);
};

namespace {

using InFlight = adapters::CallInFlight<MysqlConnection::Impl>;

// A statement refusal after which the connection is still in a known state.
struct Refused {
    unsigned code;
    std::string message;
};

}  // namespace

asio::awaitable<MYSQL_STMT*> MysqlConnection::Impl::statement(std::string_view sql,
                                                              asio::steady_timer& deadline,
                                                              std::chrono::milliseconds timeout) {
    if (auto known = prepared.find(sql); known != prepared.end()) co_return known->second;
    MYSQL_STMT* stmt = mysql_stmt_init(mysql);
    if (!stmt) fail("mysql_stmt_init");
    int error = 0;
    count_round_trip();
    try {
        co_await drive(
            [&] { return mysql_stmt_prepare_start(&error, stmt, sql.data(), sql.size()); },
            [&](int ready) { return mysql_stmt_prepare_cont(&error, stmt, ready); }, deadline,
            "prepare", timeout);
    } catch (...) {
        mysql_stmt_close(stmt);  // never prepared: frees memory only
        throw;
    }
    if (error != 0) {
        Refused refused{mysql_stmt_errno(stmt), mysql_stmt_error(stmt)};
        mysql_stmt_close(stmt);
        co_await refuse(refused.code, "prepare: " + refused.message, deadline, timeout);
    }
    prepared.emplace(std::string(sql), stmt);
    co_return stmt;
}

// Reads the stored rows of `stmt` into `result`. After mysql_stmt_store_result every row is in
// the client's memory: binding and fetching do no I/O.
asio::awaitable<void> MysqlConnection::Impl::fetch_rows(MYSQL_STMT* stmt, MysqlResult& result,
                                                        asio::steady_timer& deadline,
                                                        std::chrono::milliseconds timeout) {
    const unsigned columns = mysql_stmt_field_count(stmt);
    int error = 0;
    co_await drive([&] { return mysql_stmt_store_result_start(&error, stmt); },
                   [&](int ready) { return mysql_stmt_store_result_cont(&error, stmt, ready); },
                   deadline, "store result", timeout);
    if (error != 0) {
        co_await refuse(mysql_stmt_errno(stmt), mysql_stmt_error(stmt), deadline, timeout);
    }
    result.start(static_cast<int>(columns));
    std::vector<MYSQL_BIND> binds(columns);
    std::vector<std::array<char, kCellBufferBytes>> buffers(columns);
    std::vector<unsigned long> lengths(columns);
    std::vector<my_bool> nulls(columns), truncated(columns);
    for (unsigned i = 0; i < columns; ++i) {
        binds[i] = MYSQL_BIND{};
        binds[i].buffer_type = MYSQL_TYPE_STRING;  // every value in its text form
        binds[i].buffer = buffers[i].data();
        binds[i].buffer_length = kCellBufferBytes;
        binds[i].length = &lengths[i];
        binds[i].is_null = &nulls[i];
        binds[i].error = &truncated[i];
    }
    if (columns > 0 && mysql_stmt_bind_result(stmt, binds.data()) != 0) {
        fail("mysql_stmt_bind_result");
    }
    std::string long_value;
    while (true) {
        int fetched = mysql_stmt_fetch(stmt);
        if (fetched == MYSQL_NO_DATA) break;
        if (fetched == 1) fail("mysql_stmt_fetch");
        for (unsigned i = 0; i < columns; ++i) {
            if (nulls[i]) {
                result.add_cell(std::nullopt);
            } else if (lengths[i] <= kCellBufferBytes) {
                result.add_cell(std::string_view(buffers[i].data(), lengths[i]));
            } else {  // truncated: fetch the whole value
                long_value.resize(lengths[i]);
                MYSQL_BIND whole{};
                whole.buffer_type = MYSQL_TYPE_STRING;
                whole.buffer = long_value.data();
                whole.buffer_length = lengths[i];
                unsigned long length = 0;
                whole.length = &length;
                if (mysql_stmt_fetch_column(stmt, &whole, i, 0) != 0) {
                    fail("mysql_stmt_fetch_column");
                }
                result.add_cell(std::string_view(long_value.data(), length));
            }
        }
    }
    mysql_stmt_free_result(stmt);  // stored: frees client memory only
}

MysqlConnection::MysqlConnection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

MysqlConnection::~MysqlConnection() = default;

asio::awaitable<std::unique_ptr<MysqlConnection>> MysqlConnection::connect(
    asio::any_io_executor executor, MysqlEndpoint endpoint, std::chrono::milliseconds timeout,
    MysqlSessionOptions session, app::Counter* round_trips) {
    auto impl = std::make_unique<Impl>();
    impl->round_trips = round_trips;
    impl->mysql = mysql_init(nullptr);
    if (!impl->mysql) throw_unavailable("cannot allocate a connection");
    MYSQL* mysql = impl->mysql;
    mysql_options(mysql, MYSQL_OPT_NONBLOCK, nullptr);
    mysql_options(mysql, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    unsigned protocol = MYSQL_PROTOCOL_TCP;  // "localhost" would mean the Unix socket
    mysql_options(mysql, MYSQL_OPT_PROTOCOL, &protocol);
    my_bool reconnect = 0;  // a lost connection is the pool's to replace, never silently redone
    mysql_options(mysql, MYSQL_OPT_RECONNECT, &reconnect);
    // Run by the server as part of the connect, in its round trips.
    const std::string isolation =
        std::string("SET SESSION TRANSACTION ISOLATION LEVEL ") + session.isolation;
    const std::string lock_wait = "SET SESSION innodb_lock_wait_timeout = " +
                                  std::to_string(session.lock_wait_timeout_seconds);
    mysql_options(mysql, MYSQL_INIT_COMMAND, isolation.c_str());
    mysql_options(mysql, MYSQL_INIT_COMMAND, lock_wait.c_str());
    mysql_options(mysql, MYSQL_INIT_COMMAND, "SET SESSION time_zone = '+00:00'");

    asio::steady_timer deadline(executor);
    deadline.expires_after(timeout);
    MYSQL* connected = nullptr;
    // CLIENT_FOUND_ROWS: an UPDATE's count is the rows it matched, as on PostgreSQL.
    co_await impl->drive(
        [&] {
            return mysql_real_connect_start(&connected, mysql, endpoint.host.c_str(),
                                            endpoint.user.c_str(), endpoint.password.c_str(),
                                            endpoint.database.c_str(), endpoint.port, nullptr,
                                            CLIENT_FOUND_ROWS);
        },
        [&](int ready) { return mysql_real_connect_cont(&connected, mysql, ready); }, deadline,
        "connect", timeout);
    impl->release_socket();
    if (!connected) impl->fail("connect failed");
    co_return std::unique_ptr<MysqlConnection>(new MysqlConnection(std::move(impl)));
}

asio::awaitable<MysqlResult> MysqlConnection::execute(std::string_view sql,
                                                      std::vector<MysqlParam> params,
                                                      std::chrono::milliseconds timeout) {
    Impl& impl = *impl_;
    if (impl.broken) throw_unavailable("connection is broken");
    InFlight in_flight(impl);
    asio::steady_timer deadline(co_await asio::this_coro::executor);
    deadline.expires_after(timeout);

    MYSQL_STMT* stmt = nullptr;
    try {
        stmt = co_await impl.statement(sql, deadline, timeout);
    } catch (const MysqlError&) {  // refused at prepare: the connection is in a known state
        in_flight.finish();
        throw;
    }
    if (mysql_stmt_param_count(stmt) != params.size()) {
        in_flight.finish();
        throw std::logic_error("mysql: statement takes " +
                               std::to_string(mysql_stmt_param_count(stmt)) + " parameters, got " +
                               std::to_string(params.size()) + ": " + std::string(sql));
    }
    std::vector<MYSQL_BIND> binds(params.size());
    std::vector<long long> integers(params.size());
    std::vector<unsigned long> lengths(params.size());
    for (std::size_t i = 0; i < params.size(); ++i) {
        binds[i] = MYSQL_BIND{};
        if (const auto* integer = std::get_if<std::int64_t>(&params[i])) {
            integers[i] = *integer;
            binds[i].buffer_type = MYSQL_TYPE_LONGLONG;
            binds[i].buffer = &integers[i];
        } else if (auto* text = std::get_if<std::string>(&params[i])) {
            lengths[i] = text->size();
            binds[i].buffer_type = MYSQL_TYPE_STRING;
            binds[i].buffer = text->data();
            binds[i].buffer_length = text->size();
            binds[i].length = &lengths[i];
        } else {
            binds[i].buffer_type = MYSQL_TYPE_NULL;
        }
    }
    if (!binds.empty() && mysql_stmt_bind_param(stmt, binds.data()) != 0) {
        impl.fail("mysql_stmt_bind_param");
    }
    int error = 0;
    impl.count_round_trip();
    co_await impl.drive([&] { return mysql_stmt_execute_start(&error, stmt); },
                        [&](int ready) { return mysql_stmt_execute_cont(&error, stmt, ready); },
                        deadline, "query", timeout);
    if (error != 0) {
        Refused refused{mysql_stmt_errno(stmt), mysql_stmt_error(stmt)};
        try {
            co_await impl.refuse(refused.code, refused.message, deadline, timeout);
        } catch (const MysqlError&) {
            in_flight.finish();
            throw;
        }
    }
    MysqlResult result;
    if (mysql_stmt_field_count(stmt) > 0) co_await impl.fetch_rows(stmt, result, deadline, timeout);
    result.set_counts(static_cast<std::int64_t>(mysql_stmt_affected_rows(stmt)),
                      static_cast<std::int64_t>(mysql_stmt_insert_id(stmt)));
    in_flight.finish();
    co_return result;
}

asio::awaitable<void> MysqlConnection::query(std::string_view sql,
                                             std::chrono::milliseconds timeout) {
    Impl& impl = *impl_;
    if (impl.broken) throw_unavailable("connection is broken");
    InFlight in_flight(impl);
    asio::steady_timer deadline(co_await asio::this_coro::executor);
    deadline.expires_after(timeout);
    int error = 0;
    impl.count_round_trip();
    co_await impl.drive(
        [&] { return mysql_real_query_start(&error, impl.mysql, sql.data(), sql.size()); },
        [&](int ready) { return mysql_real_query_cont(&error, impl.mysql, ready); }, deadline,
        "query", timeout);
    if (error != 0) {
        Refused refused{mysql_errno(impl.mysql), mysql_error(impl.mysql)};
        try {
            co_await impl.refuse(refused.code, refused.message, deadline, timeout);
        } catch (const MysqlError&) {
            in_flight.finish();
            throw;
        }
    }
    if (mysql_field_count(impl.mysql) != 0) {  // rows left unread: the connection is out of step
        throw std::logic_error("mysql: query() is for statements without rows: " +
                               std::string(sql));
    }
    in_flight.finish();
}

bool MysqlConnection::healthy() const {
    const Impl& impl = *impl_;
    if (impl.broken || impl.in_flight) return false;
    // Between calls nothing is due from the server: input or a hangup means it closed the
    // connection (a restart, a kill, wait_timeout).
    int fd = static_cast<int>(mysql_get_socket(impl.mysql));
    return fd >= 0 && adapters::ready_now(fd, POLLIN) == 0;
}

bool MysqlConnection::in_transaction() const { return impl_->in_transaction(); }

void MysqlConnection::discard() { impl_->broken = true; }

}  // namespace concertd::mysql::detail
