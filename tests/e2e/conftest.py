"""Fixtures of the end-to-end suite.

- `pg_cluster` (session, autouse): with CONCERTD_E2E_BACKEND=postgres or postgres+redis, one
  throwaway PostgreSQL cluster for the whole session (scripts/pg-start.sh in a temp dir, stopped
  and removed at the end); every server then gets its own fresh database in it. Nothing on
  SQLite (the default). With postgres+redis every server also starts its own redis-server
  (support.RedisServer, in its work dir); whatever is left running is stopped at the end.
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


def pytest_collection_modifyitems(config, items):
    # tests/e2e/test_pg_*.py: PostgreSQL only (with or without Redis); tests/e2e/test_redis_*.py:
    # PostgreSQL + Redis only; `sqlite_only` tests: SQLite only.
    for item in items:
        if item.path.name.startswith("test_pg_") and not support.IS_POSTGRES:
            item.add_marker(pytest.mark.skip(reason="PostgreSQL only: run with CONCERTD_E2E_BACKEND=postgres"))
        if item.path.name.startswith("test_redis_") and not support.USES_REDIS:
            item.add_marker(pytest.mark.skip(reason="Redis only: run with CONCERTD_E2E_BACKEND=postgres+redis"))
        marker = item.get_closest_marker("sqlite_only")
        if marker is not None and support.IS_POSTGRES:
            reason = marker.args[0] if marker.args else "specific to the SQLite back end"
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session", autouse=True)
def pg_cluster():
    if not support.IS_POSTGRES:
        yield None
        return
    cluster = support.PgCluster().start()
    support.set_pg_cluster(cluster)
    try:
        yield cluster
    finally:
        support.set_pg_cluster(None)
        support.RedisServer.stop_all()
        cluster.destroy()


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory, pg_cluster) -> pathlib.Path:
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
def make_server(tmp_path, pg_cluster):
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
        if support.IS_POSTGRES:
            clusters = {}
            for s in list(support.TOUCHED.values()):
                try:
                    clusters[id(s.cluster)] = s.cluster
                except AssertionError:  # the session's cluster is gone already
                    pass
            for cluster in clusters.values():
                report.sections.append((f"postgresql log ({cluster.dir}/server.log)", cluster.log_tail(30)))
        if support.USES_REDIS:
            redises = {id(s.redis): s.redis for s in list(support.TOUCHED.values()) if s.redis is not None}
            for r in redises.values():
                report.sections.append((f"redis log ({r.dir}/redis.log)", r.log_tail(15)))
        kafka = sys.modules.get("kafka_broker")  # only when a test imported it
        if kafka is not None:
            for b in list(kafka.KafkaBroker._live.values()):
                report.sections.append((f"kafka log ({b.dir}/server.log)", b.log_tail(30)))
        mariadb = sys.modules.get("mariadb_server")  # only when a test imported it
        if mariadb is not None:
            for m in list(mariadb.MariaDbServer._live.values()):
                report.sections.append((f"mariadb log ({m.dir}/server.log)", m.log_tail(30)))


def pytest_sessionfinish(session, exitstatus):
    # A MariaDB a test left running (an aborted fixture) would outlive the run: kill it.
    mariadb = sys.modules.get("mariadb_server")
    if mariadb is not None:
        mariadb.MariaDbServer.stop_all()
