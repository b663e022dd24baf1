"""What the end-to-end tests share: a concertd process (`Server`), a pool of them keyed by their
settings (`ServerPool`), the API flow (`Api`), response checks and a barrier-started thread pool.

The suite is black-box: it knows SPEC.md, docs/api-decisions.md and the schemas in
migrations/sqlite/0001_init.sql and migrations/postgres/0001_init.sql (the same tables and
columns), never the implementation.

Back end: CONCERTD_E2E_BACKEND=sqlite (default) gives every server its own SQLite file;
CONCERTD_E2E_BACKEND=postgres runs one throwaway PostgreSQL cluster for the session
(`PgCluster`, started by conftest) and gives every server its own fresh database in it;
CONCERTD_E2E_BACKEND=postgres+redis does the same and also gives every server its own throwaway
redis-server (`RedisServer`, CONCERTD_REDIS_URL: the queue, the distributed lock and the cache
live there); processes started on one database (`start_group`, `start_pair`) share one Redis.
CONCERTD_E2E_BACKEND=mariadb runs one throwaway MariaDB for the session
(`mariadb_server.MariaDbServer`) and gives every server its own fresh database in it, as on
PostgreSQL. `db_server()` is the session's database server of either kind (`IS_SHARED_DB`).
Tests read a server's database through `Server.db()` / `Server.db_query()` with the same SQL
('?' placeholders) on every back end.
"""
from __future__ import annotations

import concurrent.futures
import datetime as dt
import itertools
import os
import pathlib
import random
import re
import signal
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections import OrderedDict
from decimal import Decimal
from typing import Any, Callable, Iterable

import requests

from mariadb_server import MariaDbServer

REPO = pathlib.Path(__file__).resolve().parents[2]
ADMIN_KEY = "e2e-admin-key-0123456789"
JSON_CONTENT_TYPE = "application/json; charset=utf-8"
ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")
TOKEN_STATES = {"WAITING", "ACTIVE"}

# Settings of the plain tests: no demo data, an admin key, and a queue that admits at once.
DEFAULT_ENV = {
    "CONCERTD_DEMO_DATA": "false",
    "CONCERTD_ADMIN_KEY": ADMIN_KEY,
    "CONCERTD_QUEUE_ADMIT_PER_SECOND": "100000",
    "CONCERTD_QUEUE_MAX_ACTIVE": "100000",
    "CONCERTD_THREADS": "2",
}

SEAT_STRATEGIES = ["pessimistic", "optimistic", "distributed", "atomic"]
LOCK_STRATEGIES = ["pessimistic", "optimistic", "distributed"]

BACKENDS = ("sqlite", "postgres", "postgres+redis", "mariadb")
BACKEND = (os.environ.get("CONCERTD_E2E_BACKEND") or "sqlite").strip().lower()
IS_SQLITE = BACKEND == "sqlite"
IS_POSTGRES = BACKEND in ("postgres", "postgres+redis")
IS_MARIADB = BACKEND == "mariadb"
# A database server that several processes share (PostgreSQL or MariaDB): without Redis, the
# waiting queue, the `distributed` lock and the relay's turn live in it, and any number of
# processes on one database form one service.
IS_SHARED_DB = IS_POSTGRES or IS_MARIADB
USES_REDIS = BACKEND == "postgres+redis"

# Measurements that tests report (conftest prints them at the end of the run, -s or not).
REPORT_LINES: list[str] = []


def report(line: str) -> None:
    REPORT_LINES.append(line)
    print(line)


# Servers that a test talked to; conftest prints their logs when the test fails.
TOUCHED: "OrderedDict[int, Server]" = OrderedDict()


def binary_path() -> str:
    return os.environ.get("CONCERTD_BINARY") or str(REPO / "build" / "release" / "concertd")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_environ() -> dict[str, str]:
    """The test process's environment without any CONCERTD_* setting of its own."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CONCERTD_")}


# ---------------------------------------------------------------------------------------------
# time helpers

def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def days_from_now(days: float) -> str:
    return iso(dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=days))


def parse_iso(text: str) -> dt.datetime:
    assert isinstance(text, str) and ISO_Z.match(text), f"not an ISO 8601 UTC 'Z' time: {text!r}"
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# ---------------------------------------------------------------------------------------------
# response checks

def body_of(resp: requests.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return resp.text


def describe(resp: requests.Response) -> str:
    req = resp.request
    return f"{req.method} {req.path_url} -> {resp.status_code} {resp.text[:500]!r}"


def assert_json_content_type(resp: requests.Response) -> None:
    ctype = resp.headers.get("Content-Type", "")
    assert ctype.lower().replace(" ", "") == JSON_CONTENT_TYPE.replace(" ", ""), (
        f"Content-Type {ctype!r}, expected {JSON_CONTENT_TYPE!r}: {describe(resp)}")


def expect(resp: requests.Response, status: int) -> Any:
    """Asserts the status and the JSON content type; returns the parsed body."""
    assert resp.status_code == status, f"expected {status}: {describe(resp)}"
    assert_json_content_type(resp)
    return resp.json()


def expect_error(resp: requests.Response, status: int, code: str | Iterable[str]) -> dict:
    """Asserts an error of SPEC §3: the status and {"error":{"code","message"}}."""
    codes = {code} if isinstance(code, str) else set(code)
    assert resp.status_code == status, f"expected {status} {codes}: {describe(resp)}"
    assert_json_content_type(resp)
    body = resp.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), f"not an error body: {body}"
    err = body["error"]
    assert err.get("code") in codes, f"expected code {codes}: {describe(resp)}"
    assert isinstance(err.get("message"), str) and err["message"], f"error without message: {body}"
    return err


def error_code(resp: requests.Response) -> str | None:
    try:
        body = resp.json()
        return body["error"]["code"]
    except Exception:  # noqa: BLE001 - any non-error body
        return None


# ---------------------------------------------------------------------------------------------
# database access, the same SQL on both back ends

class Row(tuple):
    """A result row readable by index and by column name (like sqlite3.Row)."""

    _names: tuple[str, ...] = ()

    @classmethod
    def make(cls, values, names: tuple[str, ...]) -> "Row":
        row = cls(values)
        row._names = names
        return row

    def __getitem__(self, key):  # type: ignore[override]
        if isinstance(key, str):
            try:
                return tuple.__getitem__(self, self._names.index(key))
            except ValueError:
                raise KeyError(key) from None
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


def _plain(value: Any) -> Any:
    # sum() of bigints is numeric on PostgreSQL and DECIMAL on MariaDB: compare it as the
    # integer it is.
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    return value


def mysql_placeholders(sql: str, params: tuple) -> str:
    """The suite's '?' placeholders as PyMySQL's %s (a literal % doubled, as PyMySQL then formats
    the string with %); without parameters PyMySQL formats nothing, and the SQL stays as it is."""
    if not params:
        return sql
    assert sql.count("?") == len(params), f"{sql.count('?')} placeholders, {len(params)} parameters: {sql}"
    return sql.replace("%", "%%").replace("?", "%s")


class DbReader:
    """One connection to a server's database for reading: SQLite file (read-only, WAL readers do
    not block the writer), or the server's PostgreSQL (pg8000) or MariaDB (PyMySQL, autocommit:
    each statement sees what was committed before it) database. SQL uses '?' placeholders on all.
    """

    def __init__(self, server: "Server"):
        self.backend = BACKEND
        if IS_SHARED_DB:
            self.conn = server.cluster.connect(server.database)
        else:
            self.conn = sqlite3.connect(f"file:{server.db_path}?mode=ro", uri=True, timeout=10)

    def _run(self, sql: str, params: Iterable = ()) -> tuple[list[tuple], tuple[str, ...]]:
        if IS_SHARED_DB:
            cur = self.conn.cursor()
            params = tuple(params)
            if IS_MARIADB:
                cur.execute(mysql_placeholders(sql, params), params or None)
            else:
                cur.execute(sql, params)
            names = tuple(d[0] for d in cur.description or ())
            rows = [tuple(_plain(v) for v in r) for r in (cur.fetchall() if cur.description else [])]
            return rows, names
        cur = self.conn.execute(sql, tuple(params))
        names = tuple(d[0] for d in cur.description or ())
        return [tuple(r) for r in cur.fetchall()], names

    def rows(self, sql: str, params: Iterable = ()) -> list[Row]:
        rows, names = self._run(sql, params)
        return [Row.make(r, names) for r in rows]

    def tuples(self, sql: str, params: Iterable = ()) -> list[tuple]:
        return self._run(sql, params)[0]

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001 - a connection the outage already broke
            pass

    def __enter__(self) -> "DbReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class PgCluster:
    """A throwaway PostgreSQL cluster (scripts/pg-start.sh, scripts/pg-stop.sh) in its own
    directory; it can be stopped and started again on the same port (the outage tests)."""

    def __init__(self, directory: pathlib.Path | None = None):
        # Not under pytest's tmp dirs: those are 0700 root, and the cluster runs as `postgres`.
        self.dir = pathlib.Path(directory or tempfile.mkdtemp(prefix="concertd-e2e-pg-"))
        self.port: int | None = None
        self.lock = threading.Lock()

    def start(self) -> "PgCluster":
        args = [str(REPO / "scripts" / "pg-start.sh"), str(self.dir)]
        if self.port is not None:
            args.append(str(self.port))
        out = subprocess.run(args, capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"pg-start.sh failed ({out.returncode}): {out.stderr}{out.stdout}")
        url = out.stdout.strip().splitlines()[-1]
        m = re.match(r"^postgresql://postgres@127\.0\.0\.1:(\d+)/", url)
        assert m, f"pg-start.sh printed {url!r}"
        self.port = int(m.group(1))
        return self

    def stop(self, mode: str = "fast") -> None:
        out = subprocess.run([str(REPO / "scripts" / "pg-stop.sh"), str(self.dir), mode],
                             capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"pg-stop.sh failed ({out.returncode}): {out.stderr}{out.stdout}")

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres", timeout: float = 10.0):
        import pg8000.dbapi  # installed into the venv from requirements.txt
        pg8000.dbapi.paramstyle = "qmark"
        conn = pg8000.dbapi.connect(user="postgres", host="127.0.0.1", port=self.port, database=database,
                                    timeout=timeout, application_name="concertd-e2e")
        conn.autocommit = True
        return conn

    def admin(self, sql: str) -> None:
        conn = self.connect()
        try:
            conn.cursor().execute(sql)
        finally:
            conn.close()

    def create_database(self, name: str) -> None:
        assert re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name), name
        with self.lock:  # CREATE DATABASE copies template1: one at a time
            self.admin(f"CREATE DATABASE {name}")

    def drop_database(self, name: str) -> None:
        assert re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name), name
        self.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server log without the checkpoint chatter of CREATE/DROP DATABASE."""
        try:
            text = (self.dir / "server.log").read_text(errors="replace")
        except OSError:
            return ""
        kept = [line for line in text.splitlines() if "checkpoint" not in line]
        return "\n".join(kept[-lines:])


class RedisError(RuntimeError):
    """An error reply of Redis (RESP '-')."""


class RedisServer:
    """A throwaway redis-server (scripts/redis-start.sh, scripts/redis-stop.sh) in its own
    directory. It persists nothing: stop() and start() again on the same port (the outage tests)
    give an empty Redis. `command()` talks RESP to it directly (the fencing test)."""

    _live: "dict[int, RedisServer]" = {}
    _live_lock = threading.Lock()

    def __init__(self, directory: pathlib.Path | None = None):
        self.dir = pathlib.Path(directory or tempfile.mkdtemp(prefix="concertd-e2e-redis-"))
        self.port: int | None = None

    def start(self) -> "RedisServer":
        args = [str(REPO / "scripts" / "redis-start.sh"), str(self.dir)]
        if self.port is not None:
            args.append(str(self.port))
        out = subprocess.run(args, capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"redis-start.sh failed ({out.returncode}): {out.stderr}{out.stdout}")
        url = out.stdout.strip().splitlines()[-1]
        m = re.match(r"^redis://127\.0\.0\.1:(\d+)/0$", url)
        assert m, f"redis-start.sh printed {url!r}"
        self.port = int(m.group(1))
        with RedisServer._live_lock:
            RedisServer._live[id(self)] = self
        return self

    def stop(self) -> None:
        out = subprocess.run([str(REPO / "scripts" / "redis-stop.sh"), str(self.dir)],
                             capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"redis-stop.sh failed ({out.returncode}): {out.stderr}{out.stdout}")
        with RedisServer._live_lock:
            RedisServer._live.pop(id(self), None)

    @property
    def url(self) -> str:
        assert self.port is not None, "redis-server not started"
        return f"redis://127.0.0.1:{self.port}/0"

    @classmethod
    def stop_all(cls) -> None:
        """Stops every redis-server of this session that is still running (session end)."""
        with cls._live_lock:
            live = list(cls._live.values())
        for r in live:
            try:
                r.stop()
            except Exception:  # noqa: BLE001 - best effort at the end of the session
                pass

    # -- RESP, enough for the tests: one connection per call ------------------------------------
    def command(self, *args: Any, timeout: float = 5.0) -> Any:
        payload = f"*{len(args)}\r\n".encode()
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            payload += f"${len(b)}\r\n".encode() + b + b"\r\n"
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
            sock.sendall(payload)
            reader = sock.makefile("rb")
            return _read_resp(reader)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join((self.dir / "redis.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _read_resp(reader) -> Any:
    line = reader.readline()
    if not line:
        raise ConnectionError("redis closed the connection")
    kind, rest = line[:1], line[1:].rstrip(b"\r\n")
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RedisError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = reader.read(n + 2)
        return data[:-2].decode(errors="replace")
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_read_resp(reader) for _ in range(n)]
    raise RuntimeError(f"unexpected RESP line {line!r}")


# The session's database server: a PgCluster or a MariaDbServer (conftest starts it). Both have
# url(db), connect(db), create_database(name), drop_database(name), log_tail(), dir, port, and
# stop()/start() on the same port.
_DB_SERVER: "PgCluster | MariaDbServer | None" = None


def new_db_server() -> "PgCluster | MariaDbServer":
    """A throwaway database server of the session's kind, not started (the outage tests start
    their own)."""
    assert IS_SHARED_DB, "no database server on SQLite"
    return MariaDbServer() if IS_MARIADB else PgCluster()


def set_db_server(server: "PgCluster | MariaDbServer | None") -> None:
    global _DB_SERVER
    _DB_SERVER = server


def db_server() -> "PgCluster | MariaDbServer":
    assert _DB_SERVER is not None, "no database server: run with CONCERTD_E2E_BACKEND=postgres or mariadb"
    return _DB_SERVER


def pg_cluster() -> PgCluster:
    assert IS_POSTGRES, "no PostgreSQL cluster: run with CONCERTD_E2E_BACKEND=postgres"
    return db_server()  # type: ignore[return-value]


# Ways to stop the session's kind of database server: (a clean shutdown that ends the sessions,
# a crash). PostgreSQL: pg_ctl -m fast / -m immediate; MariaDB: SIGTERM / SIGKILL.
DB_STOP_MODES = ("term", "kill") if IS_MARIADB else ("fast", "immediate")


_db_names = itertools.count(1)


def new_database_name(hint: str = "db") -> str:
    base = re.sub(r"[^a-z0-9_]+", "_", hint.lower()).strip("_")[:40] or "db"
    return f"e2e_{os.getpid()}_{next(_db_names)}_{base}"


def fresh_database_url(workdir: pathlib.Path, hint: str = "db") -> str:
    """A CONCERTD_DATABASE_URL on an empty database of the session's back end."""
    if IS_SHARED_DB:
        name = new_database_name(hint)
        db_server().create_database(name)
        return db_server().url(name)
    return f"sqlite:{workdir}/concert.db"


# ---------------------------------------------------------------------------------------------
# the server process

class ServerStartError(RuntimeError):
    pass


class Server:
    """One concertd process with its own port, work dir and database: a SQLite file in the work
    dir, or on PostgreSQL or MariaDB a fresh database of the session's server (created at the
    first start, dropped at close). `database=` names an existing database to share instead
    (several processes on one database); that one is not dropped. `cluster=` is a database server
    other than the session's (a PgCluster or MariaDbServer: the outage tests).

    With CONCERTD_E2E_BACKEND=postgres+redis it also has a Redis (CONCERTD_REDIS_URL): its own
    redis-server in its work dir (started at the first start, kept over restarts, stopped at
    close), or `redis=` a RedisServer to share (several processes, one service); `redis=False`:
    none (the PostgreSQL-only mode, for comparisons).

    It can be stopped with SIGTERM or SIGKILL and started again on the same database.
    """

    _counter = itertools.count(1)

    def __init__(self, env: dict[str, str] | None = None, workdir: pathlib.Path | None = None,
                 name: str | None = None, database: str | None = None,
                 cluster: "PgCluster | MariaDbServer | None" = None,
                 redis: "RedisServer | bool | None" = None):
        self.number = next(Server._counter)
        self._cluster = cluster  # None: the session's
        self.name = name or f"concertd-{self.number}"
        self.workdir = pathlib.Path(workdir) if workdir else pathlib.Path(
            tempfile.mkdtemp(prefix=f"e2e-{self.name}-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.db_path = self.workdir / "concert.db"
        self.owns_database = database is None
        self.database = database or new_database_name(f"{self.number}_{self.name}")
        self._database_created = not self.owns_database
        self.overrides = dict(env or {})
        # None: its own Redis when the back end has one; False: none; a RedisServer: shared
        self.redis: RedisServer | None = redis if isinstance(redis, RedisServer) else None
        self.wants_redis = USES_REDIS and redis is not False
        self.owns_redis = self.wants_redis and self.redis is None
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        self.log_path = self.workdir / "concertd.log"
        self.starts = 0
        self._local = threading.local()

    # -- process control ----------------------------------------------------------------------
    def environment(self) -> dict[str, str]:
        env = clean_environ()
        env.update(DEFAULT_ENV)
        env["CONCERTD_DATABASE_URL"] = self.database_url
        if self.redis is not None:
            env["CONCERTD_REDIS_URL"] = self.redis.url
        for k, v in self.overrides.items():
            if v is None:
                env.pop(k, None)  # None: leave the setting to the server's default
            else:
                env[k] = str(v)
        env["CONCERTD_LISTEN"] = f"127.0.0.1:{self.port}"
        return env

    @property
    def cluster(self) -> "PgCluster | MariaDbServer":
        """The database server this process's database is on."""
        return self._cluster or db_server()

    @property
    def database_url(self) -> str:
        return self.cluster.url(self.database) if IS_SHARED_DB else f"sqlite:{self.db_path}"

    def start(self, timeout: float = 20.0) -> "Server":
        assert not self.running, "already running"
        if IS_SHARED_DB and not self._database_created:
            self.cluster.create_database(self.database)
            self._database_created = True
        if self.owns_redis and self.redis is None:
            self.redis = RedisServer(self.workdir / "redis").start()
        last_error = None
        for _attempt in range(3):
            if self.port is None or _attempt > 0:
                self.port = free_port()
            self.starts += 1
            log = open(self.log_path, "ab")
            log.write(f"\n===== start #{self.starts} on port {self.port} =====\n".encode())
            log.flush()
            self.proc = subprocess.Popen([binary_path()], env=self.environment(), cwd=self.workdir,
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            log.close()
            try:
                self._wait_healthy(timeout)
                TOUCHED[id(self)] = self
                return self
            except ServerStartError as exc:
                last_error = exc
                text = self.log_tail(40).lower()
                if self.proc.poll() is None:
                    self.proc.kill()
                    self.proc.wait()
                if "in use" not in text and "bind" not in text:
                    break
        raise last_error  # type: ignore[misc]

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerStartError(
                    f"{self.name} exited with {self.proc.returncode} at start:\n{self.log_tail(40)}")
            try:
                r = requests.get(self.url("/healthz"), timeout=1)
                if r.status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.02)
        raise ServerStartError(f"{self.name} not healthy within {timeout}s:\n{self.log_tail(40)}")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Sends `sig` and waits for the exit; returns the exit code (negative: killed by signal)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"{self.name} did not stop within {timeout}s after signal {sig}")
        self._drop_sessions()
        return self.proc.returncode

    def kill(self) -> int:
        return self.stop(signal.SIGKILL, timeout=10)

    def restart(self, timeout: float = 20.0) -> "Server":
        if self.running:
            self.stop()
        return self.start(timeout)

    def close(self) -> None:
        if self.running:
            try:
                self.stop(timeout=10)
            except AssertionError:
                pass
        if IS_SHARED_DB and self.owns_database and self._database_created:
            try:  # keeps the cluster small over a session of a few hundred servers
                self.cluster.drop_database(self.database)
                self._database_created = False
            except Exception:  # noqa: BLE001 - a stopped cluster; the session removes it anyway
                pass
        if self.owns_redis and self.redis is not None:
            try:
                self.redis.stop()
            except Exception:  # noqa: BLE001 - the session stops what is left
                pass
            self.redis = None

    def _drop_sessions(self) -> None:
        self._local = threading.local()

    def log_tail(self, lines: int = 80) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def process(self, k: int = 0) -> "Server":
        assert k == 0, "one process"
        return self

    # -- HTTP ---------------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = requests.Session()
            self._local.session = s
        return s

    def request(self, method: str, path: str, *, json: Any = None, data: Any = None,
                headers: dict[str, str] | None = None, token: str | None = None,
                admin: bool | str = False, allow_5xx: bool = False, timeout: float = 15.0,
                session: requests.Session | None = None) -> requests.Response:
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["Queue-Token"] = token
        if admin:
            hdrs["Admin-Key"] = ADMIN_KEY if admin is True else admin
        TOUCHED[id(self)] = self
        resp = (session or self.session()).request(method, self.url(path), json=json, data=data,
                                                   headers=hdrs, timeout=timeout)
        if not allow_5xx:
            assert resp.status_code < 500, f"server error: {describe(resp)}"
        return resp

    def get(self, path: str, **kw) -> requests.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw) -> requests.Response:
        return self.request("POST", path, json=json, **kw)

    # -- database -----------------------------------------------------------------------------
    def db(self) -> DbReader:
        """A connection to the server's database for reading (safe while it runs); close it."""
        return DbReader(self)

    def db_query(self, sql: str, params: tuple = ()) -> list[Row]:
        with self.db() as db:
            return db.rows(sql, params)


# How many processes make one service in the plain tests: three on PostgreSQL + Redis (SPEC §4:
# a fleet of stateless processes), one elsewhere. CONCERTD_E2E_PROCESSES overrides it.
PROCESSES = int(os.environ.get("CONCERTD_E2E_PROCESSES") or (3 if USES_REDIS else 1))


class Fleet:
    """`count` concertd processes on ONE database and ONE Redis that serve as one service: every
    request goes to the next process in turn (round robin), so consecutive steps of one flow
    (token, hold, payment, read back) run on different processes. It quacks like a `Server`:
    start/stop/kill/restart/close act on every process; `port`, `proc`, `db()` and the other
    single-process views are the first process's (raw-socket tests talk to that one)."""

    def __init__(self, env: dict[str, str] | None = None, workdir: pathlib.Path | None = None,
                 name: str | None = None, count: int = PROCESSES, database: str | None = None,
                 redis: "RedisServer | bool | None" = None):
        assert IS_SHARED_DB or count == 1, "several processes on one database need PostgreSQL or MariaDB"
        self.env = dict(env or {})
        self.first = Server(self.env, workdir=workdir, name=name, database=database, redis=redis)
        self.name = self.first.name
        self.count = count
        self.members: list[Server] = [self.first]
        self._turn = itertools.count()
        self._turn_lock = threading.Lock()

    def __getattr__(self, attr):  # port, proc, workdir, database, db_path, redis, cluster, log_path
        return getattr(self.first, attr)

    def start(self, timeout: float = 20.0) -> "Fleet":
        self.first.start(timeout)  # creates the database and the Redis the others share
        letters = "bcdefghijklmnopqrstuvwxyz"
        while len(self.members) < self.count:
            k = len(self.members) - 1
            self.members.append(Server(self.env, workdir=self.first.workdir.parent / f"{self.name}-{letters[k]}",
                                       name=f"{self.name}-{letters[k]}", database=self.first.database,
                                       redis=self.first.redis or False))
        for member in self.members[1:]:
            member.start(timeout)
        return self

    @property
    def running(self) -> bool:
        return all(m.running for m in self.members)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        for member in self.members[1:]:
            if member.proc is not None:
                member.stop(sig, timeout)
        return self.first.stop(sig, timeout)

    def kill(self) -> int:
        return self.stop(signal.SIGKILL, timeout=10)

    def restart(self, timeout: float = 20.0) -> "Fleet":
        if any(m.running for m in self.members):
            self.stop()
        return self.start(timeout)

    def close(self) -> None:
        for member in reversed(self.members):  # the first owns the database and the Redis
            member.close()

    def log_tail(self, lines: int = 80) -> str:
        return "\n".join(f"--- {m.name}\n{m.log_tail(lines)}" for m in self.members)

    def process(self, k: int = 0) -> Server:
        """One process of the service, for what only that process knows (its /metrics, its log)."""
        return self.members[k]

    def next_member(self) -> Server:
        with self._turn_lock:
            return self.members[next(self._turn) % len(self.members)]

    def url(self, path: str) -> str:
        return self.next_member().url(path)

    def request(self, method: str, path: str, **kw) -> requests.Response:
        return self.next_member().request(method, path, **kw)

    def get(self, path: str, **kw) -> requests.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw) -> requests.Response:
        return self.request("POST", path, json=json, **kw)

    def db(self) -> DbReader:
        return self.first.db()

    def db_query(self, sql: str, params: tuple = ()) -> list[Row]:
        return self.first.db_query(sql, params)


def new_service(env: dict[str, str] | None = None, workdir: pathlib.Path | None = None,
                name: str | None = None, processes: int | None = None, **kw) -> "Server | Fleet":
    """One service as the plain tests see it: a `Fleet` of PROCESSES processes (or `processes`),
    or a single `Server` when that is one."""
    count = PROCESSES if processes is None else processes
    if count == 1:
        return Server(env, workdir=workdir, name=name, **kw)
    return Fleet(env, workdir=workdir, name=name, count=count, **kw)


def start_group(workdir: pathlib.Path, name: str, count: int,
                cluster: "PgCluster | MariaDbServer | None" = None, **env) -> list[Server]:
    """`count` concertd processes on ONE PostgreSQL or MariaDB database (and, with Redis, one
    Redis): the first creates the database and the Redis (and drops/stops them at its close:
    close it last), the others share them."""
    assert IS_SHARED_DB, "several processes on one database need the PostgreSQL or MariaDB back end"
    letters = "abcdefghijklmnopqrstuvwxyz"
    first = Server(env, workdir=workdir / f"{name}-a", name=f"{name}-a", cluster=cluster)
    first.start()  # creates the database, applies the migrations, starts the Redis
    group = [first]
    try:
        for k in range(1, count):
            s = Server(env, workdir=workdir / f"{name}-{letters[k]}", name=f"{name}-{letters[k]}",
                       database=first.database, cluster=cluster, redis=first.redis or False)
            group.append(s)
            s.start()
    except Exception:
        for s in reversed(group):
            s.close()
        raise
    return group


def start_pair(workdir: pathlib.Path, name: str, cluster: "PgCluster | MariaDbServer | None" = None,
               **env) -> tuple[Server, Server]:
    """Two concertd processes on ONE PostgreSQL or MariaDB database (and one Redis, if any): the
    first creates it (and drops it at its close: close it last), the second shares it."""
    a, b = start_group(workdir, name, 2, cluster=cluster, **env)
    return a, b


class ServerPool:
    """Servers shared by the tests that need the same non-default settings; keeps a few alive."""

    def __init__(self, base_dir: pathlib.Path, keep_alive: int = 3):
        self.base_dir = base_dir
        self.keep_alive = keep_alive
        self.servers: "OrderedDict[tuple, Server | Fleet]" = OrderedDict()

    def get(self, **env: str) -> "Server | Fleet":
        key = tuple(sorted((k, str(v)) for k, v in env.items()))
        server = self.servers.get(key)
        if server is not None and server.running:
            self.servers.move_to_end(key)
            return server
        server = new_service(dict(env), workdir=self._dir())
        server.start()
        self.servers[key] = server
        while sum(1 for s in self.servers.values() if s.running) > self.keep_alive:
            _, oldest = next(iter(self.servers.items()))
            oldest.close()
            self.servers.popitem(last=False)
        return server

    def _dir(self) -> pathlib.Path:
        return pathlib.Path(tempfile.mkdtemp(prefix="pool-", dir=self.base_dir))

    def close(self) -> None:
        for server in self.servers.values():
            server.close()
        self.servers.clear()


# ---------------------------------------------------------------------------------------------
# the API flow

_user_ids = itertools.count(random.randrange(1_000, 1_000_000) * 1_000)
_user_lock = threading.Lock()


def new_user_id() -> int:
    with _user_lock:
        return next(_user_ids)


def schedule_spec(days: float = 30, seats: int = 50, price: int = 1000) -> dict:
    return {"startsAt": days_from_now(days), "seatCount": seats, "price": price}


class Api:
    """The flow of SPEC §3 over one server."""

    def __init__(self, server: Server):
        self.s = server

    # queue
    def issue_token(self, user: int, **kw) -> requests.Response:
        return self.s.post("/v1/queue/tokens", {"userId": user}, **kw)

    def token_status(self, token: str, **kw) -> requests.Response:
        return self.s.get("/v1/queue/tokens/current", token=token, **kw)

    def active_token(self, user: int, timeout: float = 15.0, **kw) -> str:
        r = self.issue_token(user, **kw)
        assert r.status_code in (200, 201), describe(r)
        token = r.json()["token"]
        status = r.json()["status"]
        deadline = time.monotonic() + timeout
        while status != "ACTIVE":
            assert time.monotonic() < deadline, f"token of user {user} not ACTIVE within {timeout}s"
            time.sleep(0.02)
            r = self.token_status(token, **kw)
            assert r.status_code == 200, describe(r)
            status = r.json()["status"]
        return token

    def active_tokens(self, users: list[int], workers: int = 16) -> dict[int, str]:
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            tokens = list(pool.map(self.active_token, users))
        return dict(zip(users, tokens))

    def user_with_token(self) -> tuple[int, str]:
        user = new_user_id()
        return user, self.active_token(user)

    # catalog
    def create_concert(self, schedules: list[dict] | None = None, title: str | None = None) -> tuple[int, list[int]]:
        body = {"title": title or f"E2E concert {new_user_id()}",
                "schedules": schedules if schedules is not None else [schedule_spec()]}
        r = self.s.post("/v1/admin/concerts", body, admin=True)
        out = expect(r, 201)
        assert is_int(out.get("concertId")) and out["concertId"] > 0, out
        assert isinstance(out.get("scheduleIds"), list) and len(out["scheduleIds"]) == len(body["schedules"]), out
        assert all(is_int(i) and i > 0 for i in out["scheduleIds"]), out
        return out["concertId"], out["scheduleIds"]

    def new_schedule(self, seats: int = 50, price: int = 1000, days: float = 30) -> int:
        return self.create_concert([schedule_spec(days, seats, price)])[1][0]

    def schedules(self, token: str, concert_id: int) -> list[dict]:
        return expect(self.s.get(f"/v1/concerts/{concert_id}/schedules", token=token), 200)["schedules"]

    def seats(self, token: str, schedule_id: int, **kw) -> list[dict]:
        return expect(self.s.get(f"/v1/schedules/{schedule_id}/seats", token=token, **kw), 200)["seats"]

    def seat_statuses(self, token: str, schedule_id: int) -> dict[int, str]:
        return {s["seatNo"]: s["status"] for s in self.seats(token, schedule_id)}

    # reservations
    def hold(self, token: str, user: int, schedule_id: int, seat_no: int, **kw) -> requests.Response:
        return self.s.post("/v1/reservations", {"userId": user, "scheduleId": schedule_id, "seatNo": seat_no},
                           token=token, **kw)

    def reservation(self, reservation_id: int, **kw) -> requests.Response:
        return self.s.get(f"/v1/reservations/{reservation_id}", **kw)

    def held(self, token: str, user: int, schedule_id: int, seat_no: int) -> dict:
        return expect(self.hold(token, user, schedule_id, seat_no), 201)

    # wallet
    def charge(self, user: int, amount: int, **kw) -> requests.Response:
        return self.s.post(f"/v1/users/{user}/points/charge", {"amount": amount}, **kw)

    def charged(self, user: int, amount: int) -> int:
        return expect(self.charge(user, amount), 200)["balance"]

    def balance(self, user: int) -> int:
        out = expect(self.s.get(f"/v1/users/{user}/points"), 200)
        assert out["userId"] == user, out
        return out["balance"]

    def history(self, user: int, limit: int | None = None) -> list[dict]:
        q = "" if limit is None else f"?limit={limit}"
        out = expect(self.s.get(f"/v1/users/{user}/points/history{q}"), 200)
        assert out["userId"] == user, out
        return out["entries"]

    # payments
    def pay(self, token: str, user: int, reservation_id: int, key: str | None = None, **kw) -> requests.Response:
        headers = dict(kw.pop("headers", {}) or {})
        if key is not None:
            headers["Idempotency-Key"] = key
        return self.s.post("/v1/payments", {"userId": user, "reservationId": reservation_id},
                           token=token, headers=headers, **kw)


# ---------------------------------------------------------------------------------------------
# concurrency

def run_concurrently(fn: Callable[..., Any], args_list: list[tuple], start_timeout: float = 60.0) -> list[Any]:
    """Runs fn(*args) for every args in its own thread, all released at once by a barrier.
    Returns the results in order; re-raises the first exception."""
    n = len(args_list)
    barrier = threading.Barrier(n, timeout=start_timeout)

    def call(args):
        barrier.wait()
        return fn(*args)

    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
        futures = [pool.submit(call, a) for a in args_list]
        return [f.result() for f in futures]


def poll(predicate: Callable[[], Any], timeout: float, interval: float = 0.05,
         what: "str | Callable[[], str]" = "condition") -> Any:
    """Calls `predicate` until it is truthy; fails after `timeout` naming `what` (or its call)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what() if callable(what) else what} not reached within {timeout}s"
        time.sleep(interval)
