"""A throwaway Kafka broker for the end-to-end tests (`KafkaBroker`), in the shape of
support.RedisServer and support.PgCluster; kept out of support.py, which the tests that need no
Kafka import.

The broker is scripts/kafka-start.sh's single-node KRaft Kafka (broker and controller in one
JVM) in its own directory; scripts/install-kafka.sh must have run (kafka-start.sh runs it when
the broker's jars are missing). `produce()` and `consume()` go through kcat, so the tests can
check what concertd published, and publish to it, without a Kafka client in the venv.
"""
from __future__ import annotations

import json
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


class KafkaBroker:
    """A single-node Kafka in its own directory. stop() and start() again keep the address, the
    topics and the committed offsets (the outage tests); `kill()` is a crash, `pause()` freezes
    it with SIGSTOP (clients see a broker that accepts connections and never answers)."""

    _live: "dict[int, KafkaBroker]" = {}
    _live_lock = threading.Lock()

    def __init__(self, directory: pathlib.Path | None = None):
        # Not under pytest's tmp dirs, like PgCluster: the directory outlives a failed test
        # for its log, and destroy() removes it.
        self.dir = pathlib.Path(directory or tempfile.mkdtemp(prefix="concertd-e2e-kafka-"))
        self.port: int | None = None
        self.start_seconds: float | None = None  # of the last start(), for the reports

    def start(self, timeout: float = 120.0) -> "KafkaBroker":
        args = [str(REPO / "scripts" / "kafka-start.sh"), str(self.dir)]
        if self.port is not None:
            args.append(str(self.port))
        began = time.monotonic()
        out = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
        if out.returncode != 0:
            raise RuntimeError(f"kafka-start.sh failed ({out.returncode}): {out.stderr}{out.stdout}")
        self.start_seconds = time.monotonic() - began
        address = out.stdout.strip().splitlines()[-1]
        m = re.match(r"^127\.0\.0\.1:(\d+)$", address)
        assert m, f"kafka-start.sh printed {address!r}"
        self.port = int(m.group(1))
        with KafkaBroker._live_lock:
            KafkaBroker._live[id(self)] = self
        return self

    def stop(self, mode: str = "term") -> None:
        """mode "term": a clean shutdown; "kill": SIGKILL, a crash."""
        out = subprocess.run([str(REPO / "scripts" / "kafka-stop.sh"), str(self.dir), mode],
                             capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"kafka-stop.sh failed ({out.returncode}): {out.stderr}{out.stdout}")
        with KafkaBroker._live_lock:
            KafkaBroker._live.pop(id(self), None)

    def kill(self) -> None:
        self.stop("kill")

    def restart(self, mode: str = "term") -> "KafkaBroker":
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
        return int((self.dir / "kafka.pid").read_text())

    @property
    def bootstrap(self) -> str:
        """The value for CONCERTD_KAFKA_BROKERS."""
        assert self.port is not None, "Kafka not started"
        return f"127.0.0.1:{self.port}"

    def rss_kib(self) -> int:
        """Resident memory of the broker's JVM."""
        for line in pathlib.Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    @classmethod
    def stop_all(cls) -> None:
        """Stops every broker of this session that is still running (session end)."""
        with cls._live_lock:
            live = list(cls._live.values())
        for b in live:
            try:
                b.stop("kill")
            except Exception:  # noqa: BLE001 - best effort at the end of the session
                pass

    # -- kcat, enough for the tests ---------------------------------------------------------------
    def produce(self, topic: str, value: str, key: str | None = None,
                headers: dict[str, str] | None = None, timeout: float = 30.0) -> None:
        """Sends one message with an idempotent producer (acks=all) and waits for its delivery."""
        args = ["kcat", "-P", "-b", self.bootstrap, "-t", topic, "-X", "enable.idempotence=true"]
        for name, v in (headers or {}).items():
            args += ["-H", f"{name}={v}"]
        line = value
        if key is not None:
            assert "\t" not in key and "\n" not in key + value, "kcat reads one line, tab-separated"
            args += ["-K", "\t"]
            line = f"{key}\t{value}"
        out = subprocess.run(args, input=line + "\n", capture_output=True, text=True, timeout=timeout)
        if out.returncode != 0:
            raise RuntimeError(f"kcat -P failed ({out.returncode}): {out.stderr}")

    def consume(self, topic: str, count: int | None = None, group: str | None = None,
                timeout: float = 30.0) -> list[dict]:
        """Reads from the beginning (or the group's committed offsets) to the end of the topic,
        at most `count` messages. Each is kcat's JSON: topic, partition, offset, key, payload,
        headers (a flat [name, value, ...] list), ts."""
        args = ["kcat", "-C", "-b", self.bootstrap, "-e", "-q", "-J"]
        if count is not None:
            args += ["-c", str(count)]
        if group is None:
            args += ["-o", "beginning", "-t", topic]
        else:  # (kcat applies -o to every assigned partition, over the committed offsets)
            args += ["-X", "auto.offset.reset=earliest", "-G", group, topic]
        out = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
        if out.returncode != 0:
            raise RuntimeError(f"kcat -C failed ({out.returncode}): {out.stderr}")
        return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = (self.dir / "server.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])
