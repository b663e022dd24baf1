"""A throwaway MariaDB for the end-to-end tests (`MariaDbServer`), in the shape of
support.PgCluster and kafka_broker.KafkaBroker; kept out of support.py, which the tests that need
no MariaDB import.

The server is scripts/mariadb-start.sh's mariadbd (Debian's 10.11, scripts/install-deps.sh) in
its own directory. `connect()` goes through PyMySQL (pure Python, from requirements.txt), whose
placeholders are %s, not the '?' of support.DbReader.
"""
from __future__ import annotations

import os
import pathlib
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

REPO = pathlib.Path(__file__).resolve().parents[2]
USER = "concertd"
PASSWORD = "concertd"


class MariaDbServer:
    """A mariadbd in its own directory. stop() and start() again keep the port and the data (the
    outage tests); `kill()` is a crash (SIGKILL; InnoDB recovers on the next start), `pause()`
    freezes it with SIGSTOP (clients connect and get no answer)."""

    _live: "dict[int, MariaDbServer]" = {}
    _live_lock = threading.Lock()

    def __init__(self, directory: pathlib.Path | None = None):
        # Not under pytest's tmp dirs, like PgCluster: those are 0700 root, and mariadbd runs as
        # `mysql` when the tests run as root.
        self.dir = pathlib.Path(directory or tempfile.mkdtemp(prefix="concertd-e2e-mariadb-"))
        self.port: int | None = None
        self.start_seconds: float | None = None  # of the last start(), for the reports
        self.lock = threading.Lock()

    def start(self, timeout: float = 120.0) -> "MariaDbServer":
        args = [str(REPO / "scripts" / "mariadb-start.sh"), str(self.dir)]
        if self.port is not None:
            args.append(str(self.port))
        began = time.monotonic()
        out = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
        if out.returncode != 0:
            raise RuntimeError(f"mariadb-start.sh failed ({out.returncode}): {out.stderr}{out.stdout}")
        self.start_seconds = time.monotonic() - began
        url = out.stdout.strip().splitlines()[-1]
        m = re.match(rf"^mysql://{USER}:{PASSWORD}@127\.0\.0\.1:(\d+)/concertd$", url)
        assert m, f"mariadb-start.sh printed {url!r}"
        self.port = int(m.group(1))
        with MariaDbServer._live_lock:
            MariaDbServer._live[id(self)] = self
        return self

    def stop(self, mode: str = "term") -> None:
        """mode "term": a clean shutdown; "kill": SIGKILL, a crash."""
        out = subprocess.run([str(REPO / "scripts" / "mariadb-stop.sh"), str(self.dir), mode],
                             capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"mariadb-stop.sh failed ({out.returncode}): {out.stderr}{out.stdout}")
        with MariaDbServer._live_lock:
            MariaDbServer._live.pop(id(self), None)

    def kill(self) -> None:
        self.stop("kill")

    def restart(self, mode: str = "term") -> "MariaDbServer":
        self.stop(mode)
        return self.start()

    def pause(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def destroy(self) -> None:
        try:
            self.stop("kill")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def pid(self) -> int:
        return int((self.dir / "mariadb.pid").read_text())

    def url(self, database: str = "concertd") -> str:
        """The value for CONCERTD_DATABASE_URL."""
        assert self.port is not None, "mariadbd not started"
        return f"mysql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str | None = "concertd", timeout: float = 10.0):
        import pymysql  # installed into the venv from requirements.txt
        return pymysql.connect(host="127.0.0.1", port=self.port, user=USER, password=PASSWORD,
                               database=database, connect_timeout=timeout, read_timeout=timeout,
                               write_timeout=timeout, autocommit=True, charset="utf8mb4")

    def admin(self, sql: str) -> None:
        conn = self.connect(None)
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
        finally:
            conn.close()

    def create_database(self, name: str) -> None:
        assert re.fullmatch(r"[a-z_][a-z0-9_]{0,63}", name), name
        with self.lock:
            self.admin(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")

    def drop_database(self, name: str) -> None:
        assert re.fullmatch(r"[a-z_][a-z0-9_]{0,63}", name), name
        self.admin(f"DROP DATABASE IF EXISTS {name}")

    def rss_kib(self) -> int:
        """Resident memory of mariadbd."""
        for line in pathlib.Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    @classmethod
    def stop_all(cls) -> None:
        """Stops every server of this session that is still running (session end)."""
        with cls._live_lock:
            live = list(cls._live.values())
        for s in live:
            try:
                s.stop("kill")
            except Exception:  # noqa: BLE001 - best effort at the end of the session
                pass

    def log_tail(self, lines: int = 40) -> str:
        """The end of the error log without InnoDB's start-up notes."""
        try:
            text = (self.dir / "server.log").read_text(errors="replace")
        except OSError:
            return ""
        kept = [line for line in text.splitlines() if "[Note] InnoDB:" not in line]
        return "\n".join(kept[-lines:])
