"""The processes a benchmark runs: PostgreSQL, Redis, nginx and concertd, each started in the
bench's work dir on a free port and stopped by the pid it got; plus the HTTP calls that prepare
a run (concerts, ACTIVE queue tokens, /metrics).

Nothing here kills a process it did not start."""
from __future__ import annotations

import errno
import json
import os
import pathlib
import re
import resource
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
ADMIN_KEY = "bench-admin"
PRICE_WON = 1000
STARTS_AT = "2030-01-01T19:00:00Z"
SEATS_PER_SCHEDULE_MAX = 1000
SCHEDULES_PER_CONCERT_MAX = 100


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, **kwargs) -> str:
    """Runs a command, returns its stdout; raises with its stderr on failure."""
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    return done.stdout


def wait_until(check, seconds: float, what: str, pause: float = 0.05):
    deadline = time.time() + seconds
    while True:
        try:
            value = check()
            if value:
                return value
        except OSError:
            pass
        if time.time() > deadline:
            raise RuntimeError(f"timed out after {seconds:.0f} s waiting for {what}")
        time.sleep(pause)


def local_ports_free() -> int:
    """Local ports a new connection to 127.0.0.1 may still take: the ephemeral range less the
    sockets in TIME_WAIT (this machine's, everyone's) and those open."""
    low, high = map(int, pathlib.Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    used = subprocess.run(["ss", "-Htan", "state", "all"], capture_output=True, text=True).stdout.count("\n")
    return high - low + 1 - used


def wait_for_client_ports(needed: int, seconds: float = 75):
    """Before opening `needed` connections at once: wait (TIME_WAIT lasts 60 s) until the machine
    has that many local ports free, with a margin, so the run does not fail on EADDRNOTAVAIL."""
    deadline = time.time() + seconds
    while local_ports_free() < needed + 5_000 and time.time() < deadline:
        time.sleep(1)


# --- CPU accounting -----------------------------------------------------------------------------

def _process_ticks(pid: int) -> int:
    """utime + stime of the process, plus cutime + cstime: the children it reaped (a PostgreSQL
    backend that ends during a run is counted by its postmaster)."""
    try:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    except (OSError, IndexError, ValueError):
        return 0


def _children(parent: int) -> list[int]:
    out = []
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == parent:
                    out.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                pass
    return out


def _machine_ticks() -> tuple[int, int]:
    fields = [int(v) for v in pathlib.Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields[:8]) - idle, sum(fields[:8])


class CpuMeter:
    """CPU time of named process groups over a run, in % of one core; of the load tools this
    process ran meanwhile ("load tool": its reaped children); and of the rest of the machine
    (other processes). Groups: name -> callable returning pids, read at the start and at the end;
    a process that starts and ends in between is counted only through the parent that reaped it."""

    def __init__(self, groups: dict):
        self.groups = groups

    def _snapshot(self):
        return {name: sum(_process_ticks(pid) for pid in pids()) for name, pids in self.groups.items()}

    @staticmethod
    def _tools() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    def __enter__(self):
        self.tools0 = self._tools()
        self.start = self._snapshot()
        self.machine_start = _machine_ticks()
        self.t0 = time.time()
        return self

    def __exit__(self, *exc):
        end = self._snapshot()
        busy0, total0 = self.machine_start
        busy1, total1 = _machine_ticks()
        cores = os.cpu_count() or 1
        seconds = max(1e-6, (total1 - total0) / os.sysconf("SC_CLK_TCK") / cores)
        hz = os.sysconf("SC_CLK_TCK")
        self.percent = {name: 100.0 * (ticks - self.start[name]) / hz / seconds for name, ticks in end.items()}
        self.percent["load tool"] = 100.0 * (self._tools() - self.tools0) / seconds
        self.percent["machine busy"] = 100.0 * (busy1 - busy0) / hz / seconds
        self.percent["rest"] = self.percent["machine busy"] - sum(v for k, v in self.percent.items()
                                                                    if k != "machine busy")
        return False


# --- PostgreSQL ---------------------------------------------------------------------------------

class Postgres:
    """One throwaway cluster (scripts/pg-start.sh); one database per concertd stack."""

    def __init__(self, directory: pathlib.Path):
        self.directory = directory
        self.url = ""

    def start(self) -> "Postgres":
        self.url = run([ROOT / "scripts/pg-start.sh", self.directory]).strip()
        return self

    @property
    def base(self) -> str:
        return self.url.rsplit("/", 1)[0]

    def create_database(self, name: str) -> str:
        self.psql(self.url, f"CREATE DATABASE {name}")
        return f"{self.base}/{name}"

    @staticmethod
    def psql(url: str, sql: str) -> list[list[str]]:
        out = run(["psql", "-X", "-q", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1", url, "-c", sql])
        return [line.split("\t") for line in out.splitlines() if line]

    def pids(self) -> list[int]:
        try:
            postmaster = int((self.directory / "data/postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return []
        return [postmaster, *_children(postmaster)]

    def stop(self):
        if self.url:
            subprocess.run([str(ROOT / "scripts/pg-stop.sh"), str(self.directory)], capture_output=True)
            self.url = ""


# --- Redis --------------------------------------------------------------------------------------

class Redis:
    def __init__(self, directory: pathlib.Path):
        self.directory = directory
        self.url = ""
        self.port = 0

    def start(self) -> "Redis":
        self.url = run([ROOT / "scripts/redis-start.sh", self.directory]).strip()
        self.port = int(re.search(r":(\d+)/", self.url).group(1))
        return self

    def cli(self, *args) -> str:
        return run(["redis-cli", "-h", "127.0.0.1", "-p", self.port, *args])

    def pids(self) -> list[int]:
        try:
            return [int((self.directory / "redis.pid").read_text())]
        except (OSError, ValueError):
            return []

    def command_calls(self) -> dict[str, int]:
        """Calls per command since the start (INFO commandstats)."""
        return {name: int(calls) for name, calls in
                re.findall(r"^cmdstat_([a-z|_]+):calls=(\d+)", self.cli("INFO", "commandstats"), re.M)}

    def used_memory(self) -> int:
        return int(re.search(r"^used_memory:(\d+)", self.cli("INFO", "memory"), re.M).group(1))

    def stop(self):
        if self.url:
            subprocess.run([str(ROOT / "scripts/redis-stop.sh"), str(self.directory)], capture_output=True)
            self.url = ""


# --- nginx --------------------------------------------------------------------------------------

NGINX_CONF = """
worker_processes {workers};
daemon off;
master_process on;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
{user}
events {{ worker_connections 20000; }}
http {{
    access_log off;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 60s;
    server_tokens off;
    etag off;
    open_file_cache max=16 inactive=60s;
    open_file_cache_valid 60s;
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        root {dir}/www;
        location / {{
            default_type application/json;
            charset utf-8;
            charset_types application/json;
        }}
    }}
}}
"""


class Nginx:
    """nginx serving one static file, with as many workers as concertd has I/O threads."""

    def __init__(self, directory: pathlib.Path, workers: int):
        self.directory = directory
        self.workers = workers
        self.process = None
        self.port = 0

    def start(self, path: str, body: bytes) -> "Nginx":
        d = self.directory
        for sub in ("www", "tmp"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        target = d / "www" / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
        for p in [d, *[q for q in d.rglob("*") if q.is_dir()]]:
            p.chmod(0o755)  # the workers run as nobody when started as root
        self.port = free_port()
        user = "user nobody nogroup;" if os.geteuid() == 0 else ""
        conf = d / "nginx.conf"
        conf.write_text(NGINX_CONF.format(workers=self.workers, dir=d, port=self.port, user=user))
        self.process = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(d)], stdout=subprocess.DEVNULL,
                                        stderr=open(d / "stderr.log", "w"))

        def ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited {self.process.returncode}: {(d / 'stderr.log').read_text()[-1500:]}")
            return http_get(f"http://127.0.0.1:{self.port}{path}")[0] == 200

        wait_until(ready, 10, "nginx")
        return self

    def pids(self) -> list[int]:
        return [self.process.pid, *_children(self.process.pid)] if self.process else []

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful: the master stops its workers
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


# --- HTTP ---------------------------------------------------------------------------------------

def http_get(url: str, headers=None, timeout=10) -> tuple[int, bytes, dict]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def _request_bytes(method, path, body=None, headers=None) -> bytes:
    data = json.dumps(body).encode() if body is not None else b""
    head = [f"{method} {path} HTTP/1.1", "Host: bench", f"Content-Length: {len(data)}"]
    if body is not None:
        head.append("Content-Type: application/json")
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + data


def _pipelined(port: int, requests: list[bytes], window: int = 128) -> list[tuple[int, object]]:
    """Sends requests on one keep-alive connection, `window` at a time; answers in order."""
    answers = []
    for attempt in range(60):  # EADDRNOTAVAIL: no local port free for now (TIME_WAIT drains)
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=60)
            break
        except OSError as error:
            if error.errno != errno.EADDRNOTAVAIL or attempt == 59:
                raise
            time.sleep(1)
    with sock:
        buffer = b""

        def fill():
            nonlocal buffer
            data = sock.recv(1 << 16)
            if not data:
                raise RuntimeError("connection closed by the server during a pipelined batch")
            buffer += data

        for start in range(0, len(requests), window):
            chunk = requests[start:start + window]
            sock.sendall(b"".join(chunk))
            for _ in chunk:
                while b"\r\n\r\n" not in buffer:
                    fill()
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                status = int(lines[0].split()[1])
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                while len(buffer) < length:
                    fill()
                body, buffer = buffer[:length], buffer[length:]
                answers.append((status, json.loads(body) if body else None))
    return answers


def bulk(port: int, requests: list[tuple], connections: int = 4) -> list[tuple[int, object]]:
    """(method, path, body, headers) tuples sent pipelined over a few connections; (status, json)
    answers in request order."""
    encoded = [_request_bytes(*r) for r in requests]
    results: list = [None] * connections
    failures = []

    def work(i):
        try:
            results[i] = _pipelined(port, encoded[i::connections])
        except Exception as error:  # noqa: BLE001 - raised below
            failures.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise failures[0]
    answers: list = [None] * len(requests)
    for i in range(connections):
        answers[i::connections] = results[i]
    return answers


# --- concertd -----------------------------------------------------------------------------------

class Concertd:
    """One concertd process. `env` adds to (and overrides) the bench defaults below."""

    def __init__(self, binary: str, directory: pathlib.Path, name: str, database_url: str,
                 redis_url: str | None = None, env: dict | None = None):
        self.binary = binary
        self.directory = directory
        self.name = name
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ)
        for key in [k for k in self.env if k.startswith("CONCERTD_")]:
            del self.env[key]  # only what the bench sets
        self.env.update({
            "CONCERTD_LISTEN": f"127.0.0.1:{self.port}",
            "CONCERTD_DATABASE_URL": database_url,
            "CONCERTD_DEMO_DATA": "false",
            "CONCERTD_ADMIN_KEY": ADMIN_KEY,
            "CONCERTD_QUEUE_ADMIT_PER_SECOND": "1000000",
            "CONCERTD_QUEUE_MAX_ACTIVE": "1000000",
        })
        if redis_url:
            self.env["CONCERTD_REDIS_URL"] = redis_url
        self.env.update(env or {})
        self.process = None
        self.log_path = directory / f"concertd-{name}.log"

    @property
    def pid(self) -> int:
        return self.process.pid

    def start(self) -> "Concertd":
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen([self.binary], env=self.env, cwd=self.directory,
                                        stdout=subprocess.DEVNULL, stderr=open(self.log_path, "w"))

        def ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"concertd {self.name} exited {self.process.returncode}: "
                                   f"{self.log_path.read_text()[-1500:]}")
            return http_get(self.base + "/readyz", timeout=2)[0] == 200

        wait_until(ready, 60, f"concertd {self.name} to be ready")
        return self

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process and self.process.returncode not in (0, -signal.SIGTERM, None):
            raise RuntimeError(f"concertd {self.name} exited {self.process.returncode} at stop: "
                               f"{self.log_path.read_text()[-1500:]}")

    def call(self, method: str, path: str, body=None, headers=None):
        [(status, answer)] = bulk(self.port, [(method, path, body, headers)], connections=1)
        return status, answer

    def metrics(self) -> dict[str, float]:
        text = http_get(self.base + "/metrics")[1].decode()
        out: dict[str, float] = {}
        for name, value in re.findall(r"^(concertd_[a-z_]+) ([0-9.e+-]+)$", text, re.M):
            out[name] = float(value)
        return out

    def metric_sum(self, name: str, label_filter: str = "") -> float:
        """Sum of a labelled counter's samples whose labels contain `label_filter`."""
        text = http_get(self.base + "/metrics")[1].decode()
        total = 0.0
        for labels, value in re.findall(rf"^{name}\{{([^}}]*)\}} ([0-9.e+-]+)$", text, re.M):
            if label_filter in labels:
                total += float(value)
        return total

    # --- data ---

    def create_concert(self, schedules: int, seats: int, title: str = "bench") -> tuple[list[int], int]:
        """One concert of `schedules` dates of `seats` seats; returns (schedule ids, concert id)."""
        assert 1 <= schedules <= SCHEDULES_PER_CONCERT_MAX and 1 <= seats <= SEATS_PER_SCHEDULE_MAX
        body = {"title": title,
                "schedules": [{"startsAt": STARTS_AT, "seatCount": seats, "price": PRICE_WON}] * schedules}
        status, answer = self.call("POST", "/v1/admin/concerts", body, {"Admin-Key": ADMIN_KEY})
        if status != 201:
            raise RuntimeError(f"creating a concert on {self.name}: {status} {answer}")
        return answer["scheduleIds"], answer["concertId"]

    def issue_tokens(self, users: list[int], wait_active: bool = True) -> dict[int, str]:
        answers = bulk(self.port, [("POST", "/v1/queue/tokens", {"userId": u}) for u in users])
        bad = [a for a in answers if a[0] not in (200, 201)]
        if bad:
            raise RuntimeError(f"token issue on {self.name}: {len(bad)} failed, e.g. {bad[0]}")
        tokens = {u: a[1]["token"] for u, a in zip(users, answers)}
        if wait_active:
            last = tokens[users[-1]]  # admission is first come, first served

            def active():
                status, answer = self.call("GET", "/v1/queue/tokens/current", None, {"Queue-Token": last})
                return status == 200 and answer["status"] == "ACTIVE"

            wait_until(active, 60, f"{len(users)} tokens to be ACTIVE on {self.name}", pause=0.1)
        return tokens
