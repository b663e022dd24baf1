"""Fixtures of the end-to-end suite.

- `server`: the session's default concertd (SQLite in a temp dir, no demo data, admin key,
  a queue that admits at once). Plain tests share it; each uses its own fresh user ids and
  concerts, so they do not depend on one another.
- `api`: the SPEC §3 flow over `server`.
- `make_server(**env)`: a dedicated server with its own settings and database, stopped after the
  test.
- `pool`: servers with given settings shared between tests (the strategy matrices).

When a test fails, the tail of the log of every server it talked to is attached to the report.
"""
from __future__ import annotations

import os
import pathlib

import pytest

import support
from support import Api, Server, ServerPool


def pytest_configure(config):
    binary = support.binary_path()
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        raise pytest.UsageError(f"concertd binary not found or not executable: {binary} "
                                f"(set CONCERTD_BINARY)")


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory) -> pathlib.Path:
    return tmp_path_factory.mktemp("concertd")


@pytest.fixture(scope="session")
def server(session_dir) -> Server:
    s = Server(workdir=session_dir / "default", name="default")
    s.start()
    yield s
    s.close()


@pytest.fixture
def api(server) -> Api:
    return Api(server)


@pytest.fixture
def make_server(tmp_path):
    started: list[Server] = []
    counter = iter(range(1, 1000))

    def make(start: bool = True, **env) -> Server:
        s = Server(dict(env), workdir=tmp_path / f"server-{next(counter)}")
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
