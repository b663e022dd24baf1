"""Load tools and their parsers: wrk (closed model), vegeta (open model, constant rate), pgbench,
redis-benchmark and bench/loadgen. Each runner returns a dict of numbers and keeps the exact
command line under "command" (for docs/benchmarks.md)."""
from __future__ import annotations

import base64
import json
import pathlib
import re
import shlex
import subprocess

from stack import ROOT

PGBENCH = "/usr/lib/postgresql/15/bin/pgbench"
VEGETA = ROOT / "build/bench/bin/vegeta"
LOADGEN = ROOT / "build/bench/loadgen"
WRK_THREADS = 2  # the machine's cores: the load tool shares them with the server
# vegeta's workers and connections, bounded: an open model that fell behind would otherwise open
# connections without end (each timed-out request closes one), and run the machine out of ports.
VEGETA_WORKERS = 512


def _run(cmd: list, timeout: float) -> str:
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{shlex.join(map(str, cmd))} exited {done.returncode}:\n{done.stderr[-3000:]}"
                           f"\n{done.stdout[-1000:]}")
    return done.stdout


def display(cmd: list) -> str:
    """A command line for the report, with the run's temp dir shortened."""
    text = shlex.join(str(c) for c in cmd)
    return re.sub(r"/tmp/concertd-bench-[^/ ]+", "$WORK", text).replace(str(ROOT) + "/", "")


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


# --- wrk ----------------------------------------------------------------------------------------

def wrk(url: str, connections: int, seconds: float, script: pathlib.Path | None = None,
        headers: dict | None = None, timeout_s: int = 10) -> dict:
    cmd = ["wrk", f"-t{WRK_THREADS}", f"-c{connections}", f"-d{seconds}s", f"--timeout={timeout_s}s", "--latency"]
    for k, v in (headers or {}).items():
        cmd += ["-H", f"{k}: {v}"]
    if script:
        cmd += ["-s", script]
    cmd.append(url)
    out = _run(cmd, timeout=seconds + 120)
    requests, took = re.search(r"(\d+) requests in ([\d.]+(?:us|ms|s|m)),", out).groups()
    took_s = _ms(took) / 1000
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    percentile = {p: _ms(v) for p, v in re.findall(r"^\s+(\d+)%\s+(\S+)", out, re.M)}
    statuses = re.search(r"^STATUSES (\S*)", out, re.M)
    result = {
        "tool": "wrk",
        "requests": int(requests),
        "seconds": took_s,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(map(int, socket_errors.groups())) if socket_errors else 0,
        "p50_ms": percentile.get("50"),
        "p90_ms": percentile.get("90"),
        "p99_ms": percentile.get("99"),
        "max_ms": _ms(re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", out).group(1)),
        "connections": connections,
        "command": display(cmd),
    }
    if statuses:
        result["statuses"] = {k: int(v) for k, v in (kv.split("=") for kv in statuses.group(1).split(",") if kv)}
    result["ok_rps"] = (result["requests"] - result["non2xx"]) / took_s
    return result


def lua_string_list(values) -> str:
    return ",".join(f'"{v}"' for v in values)


# --- vegeta -------------------------------------------------------------------------------------

def vegeta_targets(path: pathlib.Path, targets: list[tuple[str, str, dict, bytes | None]]) -> pathlib.Path:
    """Writes (method, url, headers, body) targets in vegeta's JSON lines format."""
    with open(path, "w") as f:
        for method, url, headers, body in targets:
            entry = {"method": method, "url": url, "header": {k: [v] for k, v in headers.items()}}
            if body is not None:
                entry["body"] = base64.b64encode(body).decode()
            f.write(json.dumps(entry) + "\n")
    return path


def vegeta(targets: pathlib.Path, rate: int, seconds: float, workdir: pathlib.Path, name: str) -> dict:
    results = workdir / f"vegeta-{name}.bin"
    attack = [VEGETA, "attack", "-format=json", f"-targets={targets}", f"-rate={rate}/s", f"-duration={seconds}s",
              "-timeout=10s", "-keepalive=true", f"-workers={VEGETA_WORKERS}", f"-max-workers={VEGETA_WORKERS}",
              f"-max-connections={VEGETA_WORKERS}", f"-output={results}"]
    _run(attack, timeout=seconds + 120)
    report = json.loads(_run([VEGETA, "report", "-type=json", results], timeout=120))
    lat = report["latencies"]
    codes = {str(k): int(v) for k, v in report.get("status_codes", {}).items()}
    errors = sum(v for k, v in codes.items() if k == "0" or k.startswith("5"))
    return {
        "tool": "vegeta",
        "offered_rps": rate,
        "achieved_rps": report["throughput"] if codes else 0.0,
        "rate": report["rate"],
        "requests": report["requests"],
        "status_codes": codes,
        "errors": errors,
        "p50_ms": lat["50th"] / 1e6, "p95_ms": lat["95th"] / 1e6, "p99_ms": lat["99th"] / 1e6,
        "max_ms": lat["max"] / 1e6,
        "command": display(attack) + " | vegeta report",
    }


# --- pgbench ------------------------------------------------------------------------------------

def pgbench(url: str, script: pathlib.Path, clients: int, seconds: float, workdir: pathlib.Path, name: str,
            defines: dict | None = None) -> dict:
    prefix = workdir / f"pgbench-{name}"
    cmd = [PGBENCH, "-n", "-M", "prepared", f"-c{clients}", f"-j{WRK_THREADS}", f"-T{int(round(seconds))}",
           "-f", script, "--log", f"--log-prefix={prefix}"]
    for k, v in (defines or {}).items():
        cmd += ["-D", f"{k}={v}"]
    cmd.append(url)
    out = _run(cmd, timeout=seconds + 120)
    latencies = []
    for log in workdir.glob(f"pgbench-{name}.*"):
        for line in log.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[2].isdigit():
                latencies.append(int(fields[2]) / 1000.0)
        log.unlink()
    latencies.sort()
    failed = re.search(r"number of failed transactions: (\d+)", out)
    processed = int(re.search(r"number of transactions actually processed: (\d+)", out).group(1))
    return {
        "tool": "pgbench",
        "tps": float(re.search(r"tps = ([\d.]+) \(without initial connection time\)", out).group(1)),
        "transactions": processed,
        "failed": int(failed.group(1)) if failed else 0,
        "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99),
        "clients": clients,
        "command": display(cmd),
    }


def percentile(sorted_values: list[float], p: float):
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, int(round(p / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[index]


# --- redis-benchmark ----------------------------------------------------------------------------

def redis_zadd(port: int, clients: int, requests: int) -> dict:
    cmd = ["redis-benchmark", "-h", "127.0.0.1", "-p", port, "-c", clients, "-n", requests, "-P", "1",
           "-t", "zadd", "-r", "100000000", "--csv"]
    out = _run(cmd, timeout=300)
    row = next(line for line in out.splitlines() if line.startswith('"ZADD'))
    _, rps, _avg, _min, p50, _p95, p99, _max = [v.strip('"') for v in row.split(",")]
    return {"tool": "redis-benchmark", "rps": float(rps), "p50_ms": float(p50), "p99_ms": float(p99),
            "clients": clients, "command": display(cmd)}


# --- bench/loadgen ------------------------------------------------------------------------------

def loadgen(subcommand: str, args: list, timeout: float) -> dict:
    cmd = [LOADGEN, subcommand, *args]
    out = _run(cmd, timeout=timeout)
    result = json.loads(out.strip().splitlines()[-1])
    result["command"] = display(cmd)
    return result
