"""Operations: health, readiness, metrics, the route list against docs/openapi.yaml, and the
start-up refusal of bad settings (SPEC §3 last rows, §4 configuration)."""
from __future__ import annotations

import re
import subprocess
import time

import pytest
import yaml

import support
from support import REPO, expect, free_port

ROUTE_LINE = re.compile(r"^(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) (/\S*)$")
HTTP_METHODS = {"get", "post", "put", "patch", "delete", "head", "options", "trace"}

# SPEC §3, with parameters written as {} (their names are the implementation's).
SPEC_ROUTES = {
    ("POST", "/v1/queue/tokens"),
    ("GET", "/v1/queue/tokens/current"),
    ("GET", "/v1/concerts"),
    ("GET", "/v1/concerts/{}/schedules"),
    ("GET", "/v1/schedules/{}/seats"),
    ("POST", "/v1/reservations"),
    ("GET", "/v1/reservations/{}"),
    ("POST", "/v1/users/{}/points/charge"),
    ("GET", "/v1/users/{}/points"),
    ("GET", "/v1/users/{}/points/history"),
    ("POST", "/v1/payments"),
    ("POST", "/v1/admin/concerts"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.yaml"),
}


def shape(path: str) -> str:
    return re.sub(r"\{[^}/]+\}", "{}", path)


def list_routes() -> set[tuple[str, str]]:
    out = subprocess.run([support.binary_path(), "--list-routes"], env=support.clean_environ(),
                         capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, f"--list-routes exited {out.returncode}: {out.stderr}"
    routes = set()
    lines = [line for line in out.stdout.splitlines() if line.strip()]
    assert lines, "--list-routes printed nothing"
    for line in lines:
        m = ROUTE_LINE.match(line.strip())
        assert m, f"--list-routes line is not 'METHOD /path': {line!r}"
        routes.add((m.group(1), m.group(2)))
    assert len(routes) == len(lines), "a route is listed twice"
    return routes


def openapi_routes(doc: dict) -> set[tuple[str, str]]:
    routes = set()
    for path, item in (doc.get("paths") or {}).items():
        for method in item:
            if method.lower() in HTTP_METHODS:
                routes.add((method.upper(), path))
    return routes


def load_openapi_file() -> dict:
    path = REPO / "docs" / "openapi.yaml"
    assert path.is_file(), f"{path} is missing"
    return yaml.safe_load(path.read_text())


def test_healthz_and_readyz(server):
    r = server.get("/healthz")
    assert r.status_code == 200
    r = server.get("/readyz")
    assert r.status_code == 200, support.describe(r)
    # every configured dependency is named: the database, and Redis when there is one
    expected = {"database": "up", **({"redis": "up"} if support.USES_REDIS else {})}
    assert r.json().get("checks") == expected, support.describe(r)


def metric_sum(text: str, name: str) -> float:
    total, found = 0.0, False
    for line in text.splitlines():
        m = re.match(rf"^{name}(\{{[^}}]*\}})?\s+(\S+)(\s+\d+)?$", line)
        if m:
            total += float(m.group(2))
            found = True
    assert found, f"no {name} sample in /metrics"
    return total


def test_metrics_counts_requests(server):
    server = server.process()  # the counters are each process's own
    r = server.get("/metrics")
    assert r.status_code == 200
    assert r.headers.get("Content-Type", "").startswith("text/plain"), r.headers.get("Content-Type")
    before = metric_sum(r.text, "concertd_http_requests_total")
    for _ in range(5):
        assert server.get("/v1/concerts").status_code == 200
    after = metric_sum(server.get("/metrics").text, "concertd_http_requests_total")
    assert after >= before + 5, f"concertd_http_requests_total went {before} -> {after} after 5 requests"
    for line in r.text.splitlines():
        if line and not line.startswith("#"):
            assert re.match(r"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})?\s+\S+(\s+\d+)?$", line), \
                f"not Prometheus text format: {line!r}"


def test_list_routes_has_every_spec_route():
    routes = {(m, shape(p)) for m, p in list_routes()}
    missing = SPEC_ROUTES - routes
    assert not missing, f"routes of SPEC §3 missing from --list-routes: {sorted(missing)}"


def test_list_routes_equal_openapi_paths():
    routes = list_routes()
    documented = openapi_routes(load_openapi_file())
    assert routes - documented == set(), f"routes not in docs/openapi.yaml: {sorted(routes - documented)}"
    assert documented - routes == set(), f"documented paths with no route: {sorted(documented - routes)}"


def test_openapi_document_is_openapi3():
    doc = load_openapi_file()
    assert str(doc.get("openapi", "")).startswith("3."), doc.get("openapi")
    assert doc.get("paths"), "no paths"


def test_openapi_is_served(server):
    r = server.get("/openapi.yaml")
    assert r.status_code == 200
    assert yaml.safe_load(r.text) == load_openapi_file(), "GET /openapi.yaml differs from docs/openapi.yaml"


# --- start-up refusal of bad settings ------------------------------------------------------------

BAD_SETTINGS = [
    ("CONCERTD_LOCK_SEAT", "banana"),
    ("CONCERTD_LOCK_POINTS", "atomic"),  # atomic is a seat-only strategy
    ("CONCERTD_LOCK_PAYMENT", "optimistically"),
    ("CONCERTD_HOLD_SECONDS", "abc"),
    ("CONCERTD_HOLD_SECONDS", "-5"),
    ("CONCERTD_QUEUE_ADMIT_PER_SECOND", "many"),
    ("CONCERTD_QUEUE_MAX_ACTIVE", "-1"),
    ("CONCERTD_THREADS", "two"),
    ("CONCERTD_DEMO_DATA", "perhaps"),
    ("CONCERTD_DATABASE_URL", "oracle://db/concert"),
    ("CONCERTD_DATABASE_URL", "mysql://127.0.0.1:3306/concert"),  # no user
    ("CONCERTD_DATABASE_URL", "mysql://u:p@127.0.0.1:99999/concert"),
    ("CONCERTD_LISTEN", "127.0.0.1:notaport"),
    ("CONCERTD_REDIS_URL", "http://127.0.0.1:6379"),
]


@pytest.mark.parametrize("variable,value", BAD_SETTINGS)
def test_bad_setting_stops_start(tmp_path, variable, value):
    port = free_port()
    env = support.clean_environ()
    env.update(support.DEFAULT_ENV)
    env["CONCERTD_DATABASE_URL"] = support.fresh_database_url(tmp_path, "bad_setting")
    env["CONCERTD_LISTEN"] = f"127.0.0.1:{port}"
    env[variable] = value
    started = time.monotonic()
    try:
        out = subprocess.run([support.binary_path()], env=env, cwd=tmp_path, capture_output=True,
                             text=True, timeout=15, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail(f"concertd kept running with {variable}={value!r}")
    assert out.returncode != 0, f"concertd exited 0 with {variable}={value!r}"
    assert time.monotonic() - started < 15
    text = out.stderr + out.stdout
    naming = [line for line in text.splitlines() if variable in line]
    assert naming, f"no line names {variable}; output was:\n{text}"


def test_demo_data_seeds_an_empty_database_once(make_server):
    s = make_server(CONCERTD_DEMO_DATA="true")
    concerts = expect(s.get("/v1/concerts"), 200)["concerts"]
    assert concerts, "CONCERTD_DEMO_DATA=true left the catalog empty"
    s.restart()
    assert expect(s.get("/v1/concerts"), 200)["concerts"] == concerts, "demo data seeded again on a full database"


def test_no_demo_data_when_disabled(make_server):
    s = make_server(CONCERTD_DEMO_DATA="false")
    assert expect(s.get("/v1/concerts"), 200) == {"concerts": []}


def test_data_survives_a_restart(make_server):
    s = make_server()
    api = support.Api(s)
    concert_id, (sid,) = api.create_concert([support.schedule_spec(seats=3, price=40)])
    user, token = api.user_with_token()
    rid = api.held(token, user, sid, 2)["reservationId"]
    api.charged(user, 100)
    assert s.stop() == 0
    s.start()
    assert expect(api.reservation(rid), 200)["status"] == "HELD"
    assert api.balance(user) == 100
    token = api.active_token(user)
    assert api.seat_statuses(token, sid) == {1: "AVAILABLE", 2: "HELD", 3: "AVAILABLE"}
    expect(api.pay(token, user, rid), 201)
    assert api.balance(user) == 60
