// Proves that Debian's libmariadb-dev has a working non-blocking API (issue 7): connects, runs
// SELECT 1 as a text query and as a prepared statement, each through the _start/_cont loop with
// poll() on mysql_get_socket() standing in for Asio. Not part of the CMake build (no "mysql" unit
// area yet; the file is not *_test.cpp). Build and run against scripts/mariadb-start.sh's server:
//   clang++-16 -std=c++20 tests/unit/mysql/nonblocking_smoke.cpp $(mariadb_config --cflags --libs)
//   ./a.out PORT
#include <mysql.h>
#include <poll.h>

#include <cstdio>
#include <cstdlib>

namespace {

int waits = 0;  // how often a call had to wait for the socket: > 0 proves it did not block

// One wait for what libmariadb asked for (MYSQL_WAIT_* bits), then the bits that happened.
int wait_for(MYSQL* mysql, int status) {
    ++waits;
    pollfd fd{mysql_get_socket(mysql), 0, 0};
    if (status & MYSQL_WAIT_READ) fd.events |= POLLIN;
    if (status & MYSQL_WAIT_WRITE) fd.events |= POLLOUT;
    if (status & MYSQL_WAIT_EXCEPT) fd.events |= POLLPRI;
    int timeout_ms = (status & MYSQL_WAIT_TIMEOUT) ? int(mysql_get_timeout_value_ms(mysql)) : -1;
    int n = poll(&fd, 1, timeout_ms);
    if (n == 0) return MYSQL_WAIT_TIMEOUT;
    int happened = 0;
    if (fd.revents & (POLLIN | POLLHUP | POLLERR)) happened |= MYSQL_WAIT_READ;
    if (fd.revents & POLLOUT) happened |= MYSQL_WAIT_WRITE;
    if (fd.revents & POLLPRI) happened |= MYSQL_WAIT_EXCEPT;
    return happened;
}

void check(bool ok, MYSQL* mysql, const char* what) {
    if (ok) return;
    std::fprintf(stderr, "%s failed: %u %s\n", what, mysql_errno(mysql), mysql_error(mysql));
    std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
    unsigned port = argc > 1 ? unsigned(std::atoi(argv[1])) : 3306;
    MYSQL mysql_storage;
    MYSQL* mysql = mysql_init(&mysql_storage);
    check(mysql_options(mysql, MYSQL_OPT_NONBLOCK, nullptr) == 0, mysql, "MYSQL_OPT_NONBLOCK");
    unsigned timeout_seconds = 5;
    mysql_options(mysql, MYSQL_OPT_CONNECT_TIMEOUT, &timeout_seconds);

    MYSQL* connected = nullptr;
    int status = mysql_real_connect_start(&connected, mysql, "127.0.0.1", "concertd", "concertd",
                                          "concertd", port, nullptr, 0);
    while (status) status = mysql_real_connect_cont(&connected, mysql, wait_for(mysql, status));
    check(connected != nullptr, mysql, "connect");

    int err = 0;
    status = mysql_real_query_start(&err, mysql, "SELECT 1", 8);
    while (status) status = mysql_real_query_cont(&err, mysql, wait_for(mysql, status));
    check(err == 0, mysql, "query");
    MYSQL_RES* result = nullptr;
    status = mysql_store_result_start(&result, mysql);
    while (status) status = mysql_store_result_cont(&result, mysql, wait_for(mysql, status));
    check(result != nullptr, mysql, "store_result");
    MYSQL_ROW row = mysql_fetch_row(result);  // rows are stored: no I/O here
    std::printf("SELECT 1 -> %s\n", row ? row[0] : "(no row)");
    mysql_free_result(result);

    // A query the server answers only after 200 ms: _start must hand back a wait, not block.
    int waits_before = waits;
    status = mysql_real_query_start(&err, mysql, "DO SLEEP(0.2)", 13);
    bool waited_at_start = status != 0;
    while (status) status = mysql_real_query_cont(&err, mysql, wait_for(mysql, status));
    check(err == 0 && waited_at_start, mysql, "DO SLEEP(0.2) without blocking");
    std::printf("DO SLEEP(0.2): _start returned a wait, %d socket wait(s)\n", waits - waits_before);

    // A prepared statement, the way the adapter will run every query.
    MYSQL_STMT* stmt = mysql_stmt_init(mysql);
    const char* sql = "SELECT ? + 1";
    status = mysql_stmt_prepare_start(&err, stmt, sql, 12);
    while (status) status = mysql_stmt_prepare_cont(&err, stmt, wait_for(mysql, status));
    check(err == 0, mysql, "stmt_prepare");
    long long in = 41, out = 0;
    MYSQL_BIND param{}, column{};
    param.buffer_type = column.buffer_type = MYSQL_TYPE_LONGLONG;
    param.buffer = &in;
    column.buffer = &out;
    check(!mysql_stmt_bind_param(stmt, &param), mysql, "bind_param");
    status = mysql_stmt_execute_start(&err, stmt);
    while (status) status = mysql_stmt_execute_cont(&err, stmt, wait_for(mysql, status));
    check(err == 0, mysql, "stmt_execute");
    check(!mysql_stmt_bind_result(stmt, &column), mysql, "bind_result");
    int fetched = 0;
    status = mysql_stmt_fetch_start(&fetched, stmt);
    while (status) status = mysql_stmt_fetch_cont(&fetched, stmt, wait_for(mysql, status));
    check(fetched == 0, mysql, "stmt_fetch");
    std::printf("SELECT ? + 1 with 41 -> %lld\n", out);
    my_bool closed = 0;
    status = mysql_stmt_close_start(&closed, stmt);
    while (status) status = mysql_stmt_close_cont(&closed, stmt, wait_for(mysql, status));

    status = mysql_close_start(mysql);
    while (status) status = mysql_close_cont(mysql, wait_for(mysql, status));
    std::printf("socket waits in all: %d (libmariadb %s)\n", waits, mysql_get_client_info());
    return row && out == 42 && waits > 0 ? 0 : 1;
}
