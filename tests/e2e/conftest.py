"""Fixtures of the end-to-end suite.

- `db_server` (session, autouse): with CONCERTD_E2E_BACKEND=postgres or postgres+redis, one
  throwaway PostgreSQL cluster for the whole session (scripts/pg-start.sh in a temp dir, stopped
  and removed at the end); with CONCERTD_E2E_BACKEND=mariadb, one throwaway MariaDB
  (mariadb_server.MariaDbServer, scripts/mariadb-start.sh); every server then gets its own fresh
  database in it. Nothing on SQLite (the default). With postgres+redis every server also starts
  its own redis-server (support.RedisServer, in its work dir); whatever is left running is
  stopped at the end. (`pg_cluster` is the same fixture under its old name.)
- `server`: the session's default service (its own database, no demo data, admin key,
  a queue that admits at once). With postgres+redis a service is a `support.Fleet` of three
  processes on one database and one Redis, requests spread round robin (CONCERTD_E2E_PROCESSES
  overrides the count); elsewhere one process. Plain tests share it; each uses its own fresh user ids and
  concerts, so they do not depend on one another.
- `api`: the SPEC §3 flow over `server`.
- `make_server(**env)`: a dedicated service with its own settings and database (and Redis, with
  postgres+redis; `redis=False`: none, `redis=<RedisServer>`: that one), stopped after the test;
  `processes=1`: one process even with postgres+redis (tests of one process's own behaviour:
  signals, its log, its /metrics counters).
- `pool`: servers with given settings shared between tests (the strategy matrices).

When a test fails, the tail of the log of every server it talked to is attached to the report.
"""
from __future__ import annotations

import os
import pathlib
import sys

import pytest

import support
from mariadb_server import MariaDbServer
from support import Api, Server, ServerPool


def pytest_configure(config):
    binary = support.binary_path()
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        raise pytest.UsageError(f"concertd binary not found or not executable: {binary} "
                                f"(set CONCERTD_BINARY)")
    if support.BACKEND not in support.BACKENDS:
        raise pytest.UsageError(f"CONCERTD_E2E_BACKEND={support.BACKEND!r}: expected one of {support.BACKENDS}")


def pytest_report_header(config):
    return f"concertd e2e back end: {support.BACKEND} (CONCERTD_E2E_BACKEND)"


# File name prefix -> (whether its tests run in this mode, why they are skipped otherwise).
ONLY_IN = {
    "test_db_": (support.IS_SHARED_DB,
                 "a database server shared by processes: run with CONCERTD_E2E_BACKEND=postgres or mariadb"),
    "test_pg_": (support.IS_POSTGRES, "PostgreSQL only: run with CONCERTD_E2E_BACKEND=postgres"),
    "test_mysql_": (support.IS_MARIADB, "MariaDB only: run with CONCERTD_E2E_BACKEND=mariadb"),
    "test_redis_": (support.USES_REDIS, "Redis only: run with CONCERTD_E2E_BACKEND=postgres+redis"),
}


def pytest_collection_modifyitems(config, items):
    # tests/e2e/test_db_*.py: PostgreSQL or MariaDB (with or without Redis); test_pg_*.py:
    # PostgreSQL only (with or without Redis); test_mysql_*.py: MariaDB only; test_redis_*.py:
    # PostgreSQL + Redis only; `sqlite_only` tests: SQLite only.
    for item in items:
        for prefix, (runs, reason) in ONLY_IN.items():
            if item.path.name.startswith(prefix) and not runs:
                item.add_marker(pytest.mark.skip(reason=reason))
        marker = item.get_closest_marker("sqlite_only")
        if marker is not None and not support.IS_SQLITE:
            reason = marker.args[0] if marker.args else "specific to the SQLite back end"
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session", autouse=True)
def db_server():
    if not support.IS_SHARED_DB:
        yield None
        return
    server = support.new_db_server().start()
    support.set_db_server(server)
    try:
        yield server
    finally:
        support.set_db_server(None)
        support.RedisServer.stop_all()
        server.destroy()


@pytest.fixture(scope="session")
def pg_cluster(db_server):
    return db_server if support.IS_POSTGRES else None


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory, db_server) -> pathlib.Path:
    return tmp_path_factory.mktemp("concertd")


@pytest.fixture(scope="session")
def server(session_dir) -> Server:
    s = support.new_service(workdir=session_dir / "default", name="default")
    s.start()
    yield s
    s.close()


@pytest.fixture
def api(server) -> Api:
    return Api(server)


@pytest.fixture
def make_server(tmp_path, db_server):
    started: list[Server] = []
    counter = iter(range(1, 1000))

    def make(start: bool = True, database: str | None = None, redis=None, processes: int | None = None,
             **env) -> Server:
        workdir = tmp_path / f"server-{next(counter)}"
        if database is not None or redis is not None:  # a process joining given resources: one
            s = Server(dict(env), workdir=workdir, database=database, redis=redis)
        else:
            s = support.new_service(dict(env), workdir=workdir, processes=processes)
        started.append(s)
        if start:
            s.start()
        return s

    yield make
    for s in started:
        s.close()


@pytest.fixture(scope="session")
def pool(session_dir) -> ServerPool:
    p = ServerPool(session_dir / "pool")
    (session_dir / "pool").mkdir(exist_ok=True)
    yield p
    p.close()


def pytest_terminal_summary(terminalreporter):
    if support.REPORT_LINES:
        terminalreporter.section(f"measurements ({support.BACKEND})")
        for line in support.REPORT_LINES:
            terminalreporter.write_line(line)


@pytest.fixture(autouse=True)
def _track_servers():
    support.TOUCHED.clear()
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for s in list(support.TOUCHED.values()):
            report.sections.append((f"concertd log: {s.name} ({s.log_path})", s.log_tail(60)))
        # The database servers of the servers it talked to, and every MariaDB still running
        # (the smoke test's, in any mode).
        databases = {}
        for s in list(support.TOUCHED.values()):
            if support.IS_SHARED_DB:
                try:
                    databases[id(s.cluster)] = s.cluster
                except AssertionError:  # the session's database server is gone already
                    pass
        for m in list(MariaDbServer._live.values()):
            databases.setdefault(id(m), m)
        for d in databases.values():
            kind = "mariadb" if isinstance(d, MariaDbServer) else "postgresql"
            report.sections.append((f"{kind} log ({d.dir}/server.log)", d.log_tail(30)))
        if support.USES_REDIS:
            redises = {id(s.redis): s.redis for s in list(support.TOUCHED.values()) if s.redis is not None}
            for r in redises.values():
                report.sections.append((f"redis log ({r.dir}/redis.log)", r.log_tail(15)))
        kafka = sys.modules.get("kafka_broker")  # only when a test imported it
        if kafka is not None:
            for b in list(kafka.KafkaBroker._live.values()):
                report.sections.append((f"kafka log ({b.dir}/server.log)", b.log_tail(30)))


def pytest_sessionfinish(session, exitstatus):
    # A MariaDB a test left running (an aborted fixture) would outlive the run: kill it.
    MariaDbServer.stop_all()
