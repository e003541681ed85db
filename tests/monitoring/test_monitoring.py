"""The monitoring files: every alert has a severity (warning or critical) and a summary, and
unit tests in alerts.test.yml where it fires (at each of its severities) and where it stays
silent; the storm-guard alerts name the campus and point to the README's on-call section;
every expression of the rules and of the Grafana dashboard names only metrics the service
exports (or recording rules, or ``up``), a live server exports them, and, where promtool is at
hand (``make check-monitoring`` fetches it), the rules, their unit tests and the dashboard's
queries pass promtool."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from server.app import Service
from server.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "monitoring"
#: The README section the storm-guard alerts send the on-call person to.
STORM_RUNBOOK = "On call: order storms"
#: Series of the storm guard.
STORM_METRIC = re.compile(r"\bdispatch_(storm|guard)_")
#: The states of ``dispatch_guard_held_orders`` (server/metrics.py, ``Metrics.show_held``).
HELD_STATES = ("awaiting_review", "confirmed")
#: PromQL functions, aggregations and keywords the files use.
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "rate", "increase", "delta", "changes", "scalar",
    "histogram_quantile", "avg_over_time", "max_over_time", "min_over_time", "clamp_min",
    "by", "without", "and", "or", "unless", "on", "ignoring", "bool", "offset",
}  # fmt: skip
#: Series Prometheus itself adds.
PROMETHEUS_SERIES = {"up", "ALERTS"}


def _promtool() -> str | None:
    candidates = [
        os.environ.get("PROMTOOL", ""),
        shutil.which("promtool") or "",
        str(ROOT / ".cache" / "prometheus" / "usr" / "bin" / "promtool"),
    ]
    return next((c for c in candidates if c and Path(c).is_file()), None)


def _rules() -> list[dict[str, Any]]:
    data = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def _dashboard() -> dict[str, Any]:
    return json.loads((MONITORING / "grafana-dashboard.json").read_text())


def _dashboard_exprs() -> list[str]:
    dashboard = _dashboard()
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", ())]
    exprs += [a["expr"] for a in dashboard["annotations"]["list"] if "expr" in a]
    return exprs


def _grafana_to_promql(expr: str) -> str:
    """A dashboard query with Grafana's variables filled in as Grafana would."""
    return expr.replace("$__rate_interval", "1m").replace("$instance", ".*")


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression reads."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", text)  # grouping labels
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(r"\b\d+(ms|[smhdwy])\b", "", text)  # durations (offset 25h)
    tokens = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", text))
    return {t for t in tokens if t not in PROMQL_WORDS}


def test_every_alert_has_a_severity_a_summary_and_a_description() -> None:
    alerts = [r for r in _rules() if "alert" in r]
    assert len(alerts) >= 10
    for rule in alerts:
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"].strip(), rule["alert"]
        assert len(rule["annotations"]["description"].split()) >= 8, rule["alert"]
    severities = {r["labels"]["severity"] for r in alerts}
    assert severities == {"warning", "critical"}
    # a condition with two levels: one name, a warning and a critical rule
    by_name: dict[str, list[str]] = {}
    for rule in alerts:
        by_name.setdefault(rule["alert"], []).append(rule["labels"]["severity"])
    for name, levels in by_name.items():
        assert sorted(levels) in (["critical"], ["warning"], ["critical", "warning"]), name
    for needed in (
        "DispatchOverBudget",  # latency against the budget, per engine
        "DispatchShedding",
        "DispatchRefusing",
        "DispatchUnassignedOrders",
        "DispatchWorkerRestarts",
        "DispatchQueueBacklog",
        "DispatchBreakerOpen",
        "DispatchDown",
    ):
        assert needed in by_name


def test_every_alert_has_unit_tests_that_fire_and_stay_silent() -> None:
    tests = yaml.safe_load((MONITORING / "alerts.test.yml").read_text())["tests"]
    cases = [case for test in tests for case in test.get("alert_rule_test", ())]
    fired: set[tuple[str, str]] = set()
    silent: set[str] = set()
    for case in cases:
        if not case.get("exp_alerts"):
            silent.add(case["alertname"])
        for alert in case.get("exp_alerts") or ():
            fired.add((case["alertname"], alert["exp_labels"]["severity"]))
    rules = {(r["alert"], r["labels"]["severity"]) for r in _rules() if "alert" in r}
    assert rules <= fired, sorted(rules - fired)
    assert {name for name, _ in rules} <= silent, sorted({n for n, _ in rules} - silent)


def test_storm_guard_alerts_name_the_campus_and_point_to_the_runbook() -> None:
    storm = [r for r in _rules() if "alert" in r and STORM_METRIC.search(r["expr"])]
    names = {r["alert"] for r in storm}
    assert {
        "DispatchStorm",  # warning at level 1 (elevated), critical at level 2 (storm)
        "DispatchStormSevere",
        "DispatchHeldOrdersAwaitingReview",
        "DispatchGuardOffDuringSurge",
        "DispatchGuardErrors",
    } <= names
    for rule in storm:
        text = rule["annotations"]["summary"] + rule["annotations"]["description"]
        # per instance (the guard's state lives in each server's memory) and per campus (but
        # dispatch_guard_errors_total, which has no campus)
        assert "{{ $labels.instance }}" in text, rule["alert"]
        if "dispatch_guard_errors" not in rule["expr"]:
            assert not re.search(r"\b(sum|max|min|avg|count)\b", rule["expr"]), rule["alert"]
            assert "{{ $labels.campus }}" in text, rule["alert"]
        assert f'README "{STORM_RUNBOOK}"' in " ".join(text.split()), rule["alert"]
    readme = (ROOT / "README.md").read_text()
    assert f"\n### {STORM_RUNBOOK}\n" in readme
    section = readme.split(f"### {STORM_RUNBOOK}\n", 1)[1].split("\n## ", 1)[0]
    section = section.split("\n### ", 1)[0]
    for name in names:
        assert name in section, name
    for command in ("admin held", "admin release", "admin confirm", "admin guard-mode"):
        assert command in section, command


def test_held_orders_are_read_by_state() -> None:
    """``dispatch_guard_held_orders`` counts awaiting-review and confirmed orders apart: the
    reminder reads only those awaiting review, the dashboard shows each state, and the unit
    tests feed series with a state as the service exports them."""
    metrics = Metrics()
    metrics.show_held("tiny", {"awaiting_review": 2})
    exported = {
        (sample.labels["state"], sample.value)
        for family in metrics.guard_held.collect()
        for sample in family.samples
    }
    assert exported == {("awaiting_review", 2), ("confirmed", 0)}
    held = re.compile(r"\bdispatch_guard_held_orders(\{[^}]*\})?")
    reminder = next(r for r in _rules() if r.get("alert") == "DispatchHeldOrdersAwaitingReview")
    assert reminder["expr"].strip() == 'dispatch_guard_held_orders{state="awaiting_review"} > 0'
    for rule in _rules():
        for match in held.finditer(rule["expr"]):
            assert "state=" in (match.group(1) or ""), rule.get("alert") or rule.get("record")
    shown: set[str] = set()
    for expr in _dashboard_exprs():
        for match in held.finditer(expr):
            found = re.search(r'state="(\w+)"', match.group(1) or "")
            assert found, expr
            shown.add(found.group(1))
    assert shown == set(HELD_STATES)
    tests = yaml.safe_load((MONITORING / "alerts.test.yml").read_text())["tests"]
    series = [s["series"] for t in tests for s in t.get("input_series", ())]
    fed = [s for s in series if held.match(s)]
    assert fed
    for name in fed:
        found = re.search(r'state="(\w+)"', name)
        assert found and found.group(1) in HELD_STATES, name


def test_rules_and_dashboard_read_only_exported_metrics() -> None:
    exported = Metrics().exported_names()
    recorded = {r["record"] for r in _rules() if "record" in r}
    known = exported | recorded | PROMETHEUS_SERIES
    used: set[str] = set()
    for rule in _rules():
        names = metric_names(rule["expr"])
        assert names, rule["expr"]
        assert names <= known, (rule.get("alert") or rule.get("record"), names - known)
        used |= names
    for expr in _dashboard_exprs():
        names = metric_names(_grafana_to_promql(expr))
        assert names and names <= exported, (expr, names - exported)
        used |= names
    # every metric of the service's own is watched somewhere (not every process_* / python_*
    # series of the default collectors)
    own = Metrics().exported_names(defaults=False)
    assert own < exported and not {n for n in own if not n.startswith("dispatch_")}
    families = {re.sub(r"_(total|bucket|sum|count|created)$", "", n) for n in own}
    watched = {re.sub(r"_(total|bucket|sum|count|created)$", "", n) for n in used}
    assert families <= watched, families - watched


def test_metric_names_parser() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (engine, le) (rate(x_bucket{code="OK", a=~"b|c"}[5m])))'
        " / scalar(sum(rate(y_total[$__rate_interval]))) > 0.5"
        " or z_total offset 25h - z_total offset 1d"
    )
    assert metric_names(_grafana_to_promql(expr)) == {"x_bucket", "y_total", "z_total"}


def test_dashboard_panels_are_well_formed() -> None:
    dashboard = _dashboard()
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert variables == {"datasource", "instance"}
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"] and panel["description"], panel["title"]
        for target in panel["targets"]:
            assert 'instance=~"$instance"' in target["expr"], (panel["title"], target["expr"])


def test_a_running_server_exports_what_the_alerts_read(service: Service) -> None:
    url = f"http://127.0.0.1:{service.metrics_port}/metrics"
    text = urllib.request.urlopen(url).read().decode()
    for line in (
        "dispatch_queue_depth 0.0",
        "# TYPE dispatch_worker_restarts_total counter",
        "dispatch_worker_restarts_total 0.0",
        "dispatch_breaker_open 0.0",
        "dispatch_config_version 1.0",
        f"dispatch_default_budget_seconds {service.config.solver.default_budget_s}",
    ):
        assert line in text.splitlines(), line
    assert "dispatch_worker_restarts " not in text  # no gauge of that name any more
    # the default collectors: the process (CPU, memory, descriptors) and the interpreter
    for family in (
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
        "python_info",
        "python_gc_collections_total",
    ):
        assert re.search(rf"^{family}(\{{[^}}]*\}})? \S+$", text, re.MULTILINE), family


PROMTOOL = _promtool()
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not found (make check-monitoring fetches it)"
)


def _run(*args: str) -> str:
    assert PROMTOOL is not None
    done = subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@needs_promtool
def test_promtool_checks_the_rules_and_their_unit_tests() -> None:
    _run("check", "rules", str(MONITORING / "alerts.yml"))
    assert "SUCCESS" in _run("test", "rules", str(MONITORING / "alerts.test.yml"))


@needs_promtool
def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    rules = [
        {"record": f"dashboard:query{k}", "expr": _grafana_to_promql(expr)}
        for k, expr in enumerate(_dashboard_exprs())
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    _run("check", "rules", str(path))
