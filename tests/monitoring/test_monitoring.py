"""The monitoring files: every alert has a severity (warning or critical) and a summary, every
expression of the rules and of the Grafana dashboard names only metrics the service exports
(or recording rules, or ``up``), a live server exports them, and, where promtool is at hand
(``make check-monitoring`` fetches it), the rules, their unit tests and the dashboard's queries
pass promtool."""

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
    tokens = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", text))
    return {t for t in tokens if t not in PROMQL_WORDS and not re.fullmatch(r"\d+[smhdwy]", t)}


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
    # every metric the service exports is watched somewhere
    families = {re.sub(r"_(total|bucket|sum|count|created)$", "", n) for n in exported}
    watched = {re.sub(r"_(total|bucket|sum|count|created)$", "", n) for n in used}
    assert families <= watched, families - watched


def test_metric_names_parser() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (engine, le) (rate(x_bucket{code="OK", a=~"b|c"}[5m])))'
        " / scalar(sum(rate(y_total[$__rate_interval]))) > 0.5"
    )
    assert metric_names(_grafana_to_promql(expr)) == {"x_bucket", "y_total"}


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
        "dispatch_worker_restarts 0.0",
        "dispatch_breaker_open 0.0",
        "dispatch_config_version 1.0",
        f"dispatch_default_budget_seconds {service.config.solver.default_budget_s}",
    ):
        assert line in text.splitlines(), line


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
