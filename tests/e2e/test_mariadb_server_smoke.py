"""The test MariaDB itself (mariadb_server.MariaDbServer, scripts/mariadb-start.sh): it starts,
a database is created and queried over TCP as the test user, the data survives a clean restart
and a crash on the same port, a frozen server answers again once continued, and it stops. No
concertd here. Skipped unless CONCERTD_E2E_MARIADB=1 or CONCERTD_E2E_BACKEND=mariadb (it needs
Debian's mariadb-server, scripts/install-deps.sh).
"""
from __future__ import annotations

import os
import time

import pytest

import support
from mariadb_server import MariaDbServer

pytestmark = pytest.mark.skipif(os.environ.get("CONCERTD_E2E_MARIADB") != "1" and not support.IS_MARIADB,
                                reason="MariaDB only: run with CONCERTD_E2E_MARIADB=1 or CONCERTD_E2E_BACKEND=mariadb")


@pytest.fixture
def server():
    s = MariaDbServer().start()
    try:
        yield s
    finally:
        s.destroy()


def scalar(conn, sql: str, params=()):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()[0]


def test_start_query_restart_crash_pause(server):
    support.report(f"mariadb: cold start (install-db + start) {server.start_seconds:.1f} s, "
                   f"rss {server.rss_kib() // 1024} MiB")
    server.create_database("smoke")
    conn = server.connect("smoke")
    try:
        assert scalar(conn, "SELECT 1") == 1
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE seat (id BIGINT PRIMARY KEY, label VARCHAR(20) NOT NULL)"
                        " ENGINE=InnoDB")
            cur.execute("INSERT INTO seat VALUES (%s, %s), (%s, %s)", (1, "A-1 ♪", 2, "A-2"))
        assert scalar(conn, "SELECT label FROM seat WHERE id = %s", (1,)) == "A-1 ♪"
        # What the adapter must not take for granted (mariadb-start.sh sets them so).
        assert scalar(conn, "SELECT @@character_set_server") == "utf8mb4"
        assert "ONLY_FULL_GROUP_BY" in scalar(conn, "SELECT @@sql_mode")
        assert scalar(conn, "SELECT @@tx_isolation") == "REPEATABLE-READ"
    finally:
        conn.close()

    # A clean restart on the same port keeps the data.
    port = server.port
    server.restart()
    assert server.port == port
    restart_seconds = server.start_seconds
    with server.connect("smoke") as conn:
        assert scalar(conn, "SELECT count(*) FROM seat") == 2

    # A crash loses nothing committed (InnoDB's redo log; only the machine's crash could).
    server.restart("kill")
    assert server.port == port
    crash_restart_seconds = server.start_seconds
    with server.connect("smoke") as conn:
        assert scalar(conn, "SELECT count(*) FROM seat") == 2

    # Frozen, it answers nothing (the connect times out); continued, it serves at once.
    server.pause()
    try:
        with pytest.raises(Exception):
            server.connect("smoke", timeout=2)
    finally:
        server.resume()
    began = time.monotonic()
    with server.connect("smoke") as conn:
        assert scalar(conn, "SELECT 1") == 1
    after_pause_seconds = time.monotonic() - began
    support.report(f"mariadb: restart {restart_seconds:.1f} s, restart after SIGKILL "
                   f"{crash_restart_seconds:.1f} s, first query after a SIGSTOP "
                   f"{after_pause_seconds:.2f} s, rss {server.rss_kib() // 1024} MiB")

    server.stop()
    assert not (server.dir / "mariadb.pid").exists()
