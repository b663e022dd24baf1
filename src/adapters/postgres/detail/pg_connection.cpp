#include "adapters/postgres/detail/pg_connection.hpp"

#include <libpq-fe.h>
#include <poll.h>
#include <spdlog/spdlog.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <array>
#include <cassert>
#include <cctype>
#include <charconv>
#include <functional>
#include <unordered_map>
#include <utility>

#include "adapters/call_in_flight.hpp"
#include "adapters/socket_wait.hpp"
#include "domain/outcome.hpp"

namespace concertd::postgres::detail {

namespace asio = boost::asio;

namespace {

// libpq messages end in a newline and often span lines ("...failed: Connection refused\n\tIs
// the server running..."): one line reads better in a log and in an exception.
std::string flatten(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    bool space = false;
    for (char c : text) {
        if (std::isspace(static_cast<unsigned char>(c))) {
            space = !out.empty();
            continue;
        }
        if (space) out += ' ';
        space = false;
        out += c;
    }
    return out;
}

[[noreturn]] void throw_unavailable(std::string_view what) {
    throw domain::DependencyUnavailable("postgres: " + std::string(what));
}

// libpq prints notices to stderr by default; route them to the log instead.
void on_notice(void* /*arg*/, const char* message) noexcept {
    try {
        spdlog::debug("postgres notice: {}", flatten(message));
    } catch (...) {  // NOLINT(bugprone-empty-catch): a C callback must not throw
    }
}

struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const {
        return std::hash<std::string_view>{}(text);
    }
};

}  // namespace

struct PgConnection::Impl {
    PGconn* conn = nullptr;
    // Wraps PQsocket() only for the length of one call (connect or pipeline), on the caller's
    // executor; released, never closed (libpq owns the socket). So no Asio object outlives a
    // call and an idle connection holds nothing of any io_context.
    std::optional<asio::posix::stream_descriptor> socket;
    // SQL text → statement name ("s1", "s2"...), for the statements the server accepted.
    std::unordered_map<std::string, std::string, StringHash, std::equal_to<>> prepared;
    std::uint64_t statements_named = 0;
    app::Counter* round_trips = nullptr;  // /metrics: concertd_db_round_trips_total
    bool broken = false;
    bool in_flight = false;

    Impl() = default;
    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;
    ~Impl() {
        release_socket();
        if (conn) PQfinish(conn);
    }

    // (Re)wraps the current PQsocket(): libpq may switch sockets between connect steps.
    void wrap_socket(const asio::any_io_executor& executor) {
        release_socket();
        int fd = PQsocket(conn);
        if (fd < 0) fail("no socket");
        socket.emplace(executor);
        boost::system::error_code error;
        socket->assign(fd, error);  // registers with the reactor (epoll_ctl ADD)
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

    // A connection-level failure: the connection is done for.
    [[noreturn]] void fail(std::string_view context) {
        broken = true;
        throw_unavailable(std::string(context) + ": " + flatten(PQerrorMessage(conn)));
    }

    // Waits until the socket is ready for `events` (POLLIN, POLLOUT or both) or `deadline`
    // expires, which marks the connection broken: its state on the wire is unknown.
    asio::awaitable<void> wait(asio::steady_timer& deadline, short events, std::string_view what,
                               std::chrono::milliseconds timeout) {
        assert(socket);
        if (PQsocket(conn) < 0) fail("connection lost");  // libpq dropped it
        bool timed_out = !co_await adapters::wait_socket(*socket, events, deadline);
        if (timed_out) {
            broken = true;
            throw_unavailable(std::string(what) + " timed out after " +
                              std::to_string(timeout.count()) + " ms");
        }
    }

    // One sync point sent, its answer awaited: one round trip.
    void count_round_trip() {
        if (round_trips) round_trips->add();
    }

    // PQflush until libpq's output buffer is empty. While it cannot write, it also reads
    // (libpq docs): the server may be blocked sending results we have not read yet.
    asio::awaitable<void> flush(asio::steady_timer& deadline, std::chrono::milliseconds timeout) {
        while (true) {
            int pending = PQflush(conn);
            if (pending == 0) co_return;
            if (pending < 0) fail("send failed");
            co_await wait(deadline, POLLIN | POLLOUT, "send", timeout);
            if (PQconsumeInput(conn) == 0) fail("receive failed");
        }
    }
};

namespace {

// What one pipeline queued, in order: each entry yields its result(s) and then a NULL.
struct Command {
    enum class Kind { kPrepare, kQuery, kRollback };
    Kind kind;
    std::size_t statement = 0;  // kQuery: index into the caller's statements
    std::string_view sql;       // kPrepare: the text being named
    std::string name;           // kPrepare
};

struct Failure {
    std::string sqlstate;
    std::string message;
    bool ends_session = false;  // FATAL or PANIC: the server closes the connection after it
};

struct Batch {
    std::vector<Command> commands;
    std::vector<PgResult> results;  // one per statement
    std::optional<Failure> failure;  // the first statement the server refused
};

Failure failure_of(const PGresult* result) {
    const char* sqlstate = PQresultErrorField(result, PG_DIAG_SQLSTATE);
    const char* primary = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY);
    std::string message = flatten(primary ? primary : PQresultErrorMessage(result));
    if (const char* detail = PQresultErrorField(result, PG_DIAG_MESSAGE_DETAIL)) {
        message += " (" + flatten(detail) + ")";
    }
    // By severity, not SQLSTATE class: 08P01 is also a plain ERROR for a bad bind, while a
    // shutdown or pg_terminate_backend (57P01) is FATAL and ends the session.
    const char* severity_field = PQresultErrorField(result, PG_DIAG_SEVERITY_NONLOCALIZED);
    std::string_view severity = severity_field ? severity_field : "";
    return {sqlstate ? sqlstate : "", std::move(message),
            severity == "FATAL" || severity == "PANIC"};
}

// Files one result under the command it answers.
void accept(PgConnection::Impl& impl, Batch& batch, const Command& command, PgResult result,
            ExecStatusType status, PGresult* raw) {
    switch (status) {
        case PGRES_COMMAND_OK:
        case PGRES_TUPLES_OK:
        case PGRES_EMPTY_QUERY:
            if (command.kind == Command::Kind::kPrepare) {
                // Recorded only once the server said yes: a failed PREPARE leaves no name.
                impl.prepared.emplace(std::string(command.sql), command.name);
            } else if (command.kind == Command::Kind::kQuery) {
                batch.results[command.statement] = std::move(result);
            }
            return;
        case PGRES_FATAL_ERROR:
            if (!batch.failure) batch.failure = failure_of(raw);
            return;
        case PGRES_PIPELINE_ABORTED:  // skipped by the server after an earlier error
            return;
        default:  // COPY, single-row mode...: nothing this layer sends
            impl.broken = true;
            throw_unavailable(std::string("unexpected result ") + PQresStatus(status));
    }
}

// Reads results until the pipeline's sync point. Each queued command yields its result(s) and
// a NULL; PGRES_PIPELINE_SYNC (not followed by a NULL) ends the batch.
asio::awaitable<void> collect(PgConnection::Impl& impl, Batch& batch,
                              asio::steady_timer& deadline, std::chrono::milliseconds timeout) {
    std::size_t current = 0;
    while (true) {
        while (PQisBusy(impl.conn) == 0) {
            PGresult* raw = PQgetResult(impl.conn);
            if (PQstatus(impl.conn) == CONNECTION_BAD) {
                if (raw) PQclear(raw);
                impl.fail("connection lost");
            }
            if (!raw) {
                if (++current > batch.commands.size()) {
                    impl.broken = true;
                    throw_unavailable("pipeline out of step: more results than commands");
                }
                continue;
            }
            ExecStatusType status = PQresultStatus(raw);
            PgResult result(raw);
            if (status == PGRES_PIPELINE_SYNC) {
                if (current != batch.commands.size()) {
                    impl.broken = true;
                    throw_unavailable("pipeline out of step: early sync");
                }
                co_return;
            }
            if (current >= batch.commands.size()) {
                impl.broken = true;
                throw_unavailable("pipeline out of step: result without a command");
            }
            accept(impl, batch, batch.commands[current], std::move(result), status, raw);
        }
        co_await impl.wait(deadline, POLLIN, "query", timeout);
        if (PQconsumeInput(impl.conn) == 0) impl.fail("receive failed");
    }
}

using InFlight = adapters::CallInFlight<PgConnection::Impl>;

}  // namespace

// --- PgResult ------------------------------------------------------------------------------

PgResult::PgResult(pg_result* result) : result_(result) {}

PgResult::PgResult(PgResult&& other) noexcept : result_(std::exchange(other.result_, nullptr)) {}

PgResult& PgResult::operator=(PgResult&& other) noexcept {
    if (this != &other) {
        if (result_) PQclear(result_);
        result_ = std::exchange(other.result_, nullptr);
    }
    return *this;
}

PgResult::~PgResult() {
    if (result_) PQclear(result_);
}

int PgResult::rows() const { return result_ ? PQntuples(result_) : 0; }

bool PgResult::is_null(int row, int column) const {
    assert(result_ && row >= 0 && row < PQntuples(result_));
    assert(column >= 0 && column < PQnfields(result_));
    return PQgetisnull(result_, row, column) == 1;
}

std::string_view PgResult::text(int row, int column) const {
    assert(result_ && row >= 0 && row < PQntuples(result_));
    assert(column >= 0 && column < PQnfields(result_));
    return {PQgetvalue(result_, row, column),
            static_cast<std::size_t>(PQgetlength(result_, row, column))};
}

std::int64_t PgResult::int64(int row, int column) const {
    std::string_view value = text(row, column);
    std::int64_t number = 0;
    auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), number);
    if (error != std::errc{} || end != value.data() + value.size() || value.empty()) {
        throw std::runtime_error("postgres: column " + std::to_string(column) +
                                 " is not an integer: '" + std::string(value) + "'" +
                                 (is_null(row, column) ? " (NULL)" : ""));
    }
    return number;
}

std::optional<std::int64_t> PgResult::optional_int64(int row, int column) const {
    if (is_null(row, column)) return std::nullopt;
    return int64(row, column);
}

bool PgResult::boolean(int row, int column) const {
    std::string_view value = text(row, column);
    assert((value == "t" || value == "f") && "not a boolean column");
    return value == "t";
}

std::int64_t PgResult::affected_rows() const {
    if (!result_) return 0;
    std::string_view value = PQcmdTuples(result_);
    std::int64_t number = 0;
    std::from_chars(value.data(), value.data() + value.size(), number);  // "" stays 0
    return number;
}

// --- PgConnection --------------------------------------------------------------------------

PgConnection::PgConnection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

PgConnection::~PgConnection() = default;

asio::awaitable<std::unique_ptr<PgConnection>> PgConnection::connect(
    asio::any_io_executor executor, std::string conninfo, std::chrono::milliseconds timeout,
    app::Counter* round_trips) {
    auto impl = std::make_unique<Impl>();
    impl->round_trips = round_trips;
    // JIT off: it pays for analytic queries, while here it would compile for milliseconds on
    // every short query the planner overestimates. Listed before the caller's string, so an
    // `options` given there replaces it (libpq keeps the last value of a repeated keyword).
    const char* const keywords[] = {"options", "dbname", nullptr};
    const char* const values[] = {"-c jit=off", conninfo.c_str(), nullptr};
    // Note: a host name (not an address) is resolved inside PQconnectStartParams, blocking.
    impl->conn = PQconnectStartParams(keywords, values, /*expand_dbname=*/1);
    if (!impl->conn) throw_unavailable("cannot allocate a connection");
    if (PQstatus(impl->conn) == CONNECTION_BAD) impl->fail("connect failed");
    PQsetNoticeProcessor(impl->conn, on_notice, nullptr);

    asio::steady_timer deadline(executor);
    deadline.expires_after(timeout);
    // libpq docs: start as if PQconnectPoll had returned PGRES_POLLING_WRITING.
    PostgresPollingStatusType status = PGRES_POLLING_WRITING;
    while (status != PGRES_POLLING_OK) {
        if (status == PGRES_POLLING_FAILED) impl->fail("connect failed");
        if (status == PGRES_POLLING_READING || status == PGRES_POLLING_WRITING) {
            // libpq may have opened a new socket in the last step (next address, SSL or GSS
            // fallback): wrap whatever PQsocket() is now, afresh.
            impl->wrap_socket(executor);
            co_await impl->wait(deadline, status == PGRES_POLLING_READING ? POLLIN : POLLOUT,
                                "connect", timeout);
        }
        status = PQconnectPoll(impl->conn);
    }
    impl->release_socket();
    // Pipeline mode needs non-blocking mode (in blocking mode it can deadlock).
    if (PQsetnonblocking(impl->conn, 1) != 0) impl->fail("PQsetnonblocking");
    if (PQenterPipelineMode(impl->conn) != 1) impl->fail("PQenterPipelineMode");
    co_return std::unique_ptr<PgConnection>(new PgConnection(std::move(impl)));
}

asio::awaitable<std::vector<PgResult>> PgConnection::pipeline(
    std::span<const PgStatement> statements, std::chrono::milliseconds timeout) {
    Impl& impl = *impl_;
    if (impl.broken || PQstatus(impl.conn) != CONNECTION_OK) {
        impl.broken = true;
        throw_unavailable("connection is broken");
    }
    Batch batch;
    batch.results.resize(statements.size());
    if (statements.empty()) co_return std::move(batch.results);

    InFlight in_flight(impl);
    auto executor = co_await asio::this_coro::executor;
    impl.wrap_socket(executor);
    asio::steady_timer deadline(executor);
    deadline.expires_after(timeout);

    std::vector<const char*> values;
    for (std::size_t index = 0; index < statements.size(); ++index) {
        const PgStatement& statement = statements[index];
        std::string name;
        if (auto known = impl.prepared.find(statement.sql); known != impl.prepared.end()) {
            name = known->second;
        } else {
            for (const Command& command : batch.commands) {  // prepared earlier in this batch
                if (command.kind == Command::Kind::kPrepare && command.sql == statement.sql) {
                    name = command.name;
                }
            }
        }
        if (name.empty()) {
            // Names are never reused, so a failed PREPARE cannot collide with a later one.
            Command prepare{Command::Kind::kPrepare, 0, statement.sql,
                            "s" + std::to_string(++impl.statements_named)};
            if (PQsendPrepare(impl.conn, prepare.name.c_str(), std::string(statement.sql).c_str(),
                              0, nullptr) == 0) {
                impl.fail("PQsendPrepare");
            }
            name = prepare.name;
            batch.commands.push_back(std::move(prepare));
        }
        values.clear();
        for (const PgParam& param : statement.params) {
            values.push_back(param ? param->c_str() : nullptr);
        }
        // PQsendQueryPrepared copies name and values into its buffer before returning.
        if (PQsendQueryPrepared(impl.conn, name.c_str(), static_cast<int>(values.size()),
                                values.data(), nullptr, nullptr, 0) == 0) {
            impl.fail("PQsendQueryPrepared");
        }
        batch.commands.push_back({Command::Kind::kQuery, index, {}, {}});
    }
    if (PQpipelineSync(impl.conn) == 0) impl.fail("PQpipelineSync");
    impl.count_round_trip();
    co_await impl.flush(deadline, timeout);
    co_await collect(impl, batch, deadline, timeout);

    if (batch.failure) {
        if (batch.failure->ends_session) {
            impl.broken = true;
            throw_unavailable(batch.failure->message);
        }
        // A failed pipeline inside BEGIN leaves the transaction open (in error): roll it back
        // so the next user of this connection starts clean.
        PGTransactionStatusType transaction = PQtransactionStatus(impl.conn);
        if (transaction == PQTRANS_INERROR || transaction == PQTRANS_INTRANS) {
            Batch rollback;
            rollback.commands.push_back({Command::Kind::kRollback, 0, {}, {}});
            if (PQsendQueryParams(impl.conn, "ROLLBACK", 0, nullptr, nullptr, nullptr, nullptr,
                                  0) == 0 ||
                PQpipelineSync(impl.conn) == 0) {
                impl.fail("PQsendQueryParams(ROLLBACK)");
            }
            impl.count_round_trip();
            co_await impl.flush(deadline, timeout);
            co_await collect(impl, rollback, deadline, timeout);
            if (rollback.failure || PQtransactionStatus(impl.conn) != PQTRANS_IDLE) {
                impl.broken = true;
                throw_unavailable("rollback after a failed pipeline failed" +
                                  (rollback.failure ? ": " + rollback.failure->message : ""));
            }
        }
        in_flight.finish();
        const auto& state = batch.failure->sqlstate;
        // The server in trouble, not the statement: connection (08, but a protocol violation
        // is our statement's fault), resources (53), canceled or shutting down (57), system
        // (58). The connection itself is still usable.
        if ((state.starts_with("08") && state != "08P01") || state.starts_with("53") ||
            state.starts_with("57") || state.starts_with("58")) {
            throw domain::DependencyUnavailable("postgres: " + batch.failure->message + " [" +
                                                state + "]");
        }
        throw PgError(state, "postgres: " + batch.failure->message + " [" + state + "]");
    }
    in_flight.finish();
    co_return std::move(batch.results);
}

asio::awaitable<PgResult> PgConnection::execute(std::string_view sql, std::vector<PgParam> params,
                                                std::chrono::milliseconds timeout) {
    std::array<PgStatement, 1> statements{PgStatement{sql, std::move(params)}};
    std::vector<PgResult> results = co_await pipeline(statements, timeout);
    co_return std::move(results.front());
}

bool PgConnection::healthy() const {
    const Impl& impl = *impl_;
    if (impl.broken || impl.in_flight || PQstatus(impl.conn) != CONNECTION_OK) return false;
    // Between calls nothing is due from the server: input or a hangup means it sent a FATAL
    // (shutdown, terminate) or closed the socket.
    return adapters::ready_now(PQsocket(impl.conn), POLLIN) == 0;
}

bool PgConnection::in_transaction() const {
    return PQtransactionStatus(impl_->conn) != PQTRANS_IDLE;
}

}  // namespace concertd::postgres::detail
