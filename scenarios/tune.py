"""Tuning solver parameters on scenarios: a grid or a seeded Latin-hypercube search over
parameter values, a replay of every set on every scenario (parallel processes, in-process
solver), the delivery KPIs per set, the Pareto front, and the chosen set as a TOML file that
``campus-dispatch admin update --file`` applies to a running server.

A parameter is given as ``table.key=values`` (``solver.`` may be left out)::

    solver.lateness_cost_per_s=10,30,100     # grid values (or choices of a search)
    budget_ms=200,500                        # = solver.default_budget_s=0.2,0.5
    solver.lateness_cost_per_s=5..200        # a range (search only), uniform
    solver.lateness_cost_per_s=log:5..200    # a range sampled on a log scale

The replay's dispatch budget is the set's ``solver.default_budget_s``: the budget the service
gives a request that names none.

The Pareto front is taken on the front KPIs (default on-time rate and latency p99; any KPI
with a better direction, such as the plan-stability ones, ``reassigned_share`` or
``eta_churn_mean_min``, against a delivery KPI such as ``click_to_door_mean_min``); the table
always shows them, the picture plots the first two (:func:`picture_kpis`), and the chosen set
is the front set with the best on-time rate (:func:`choose`)::

    campus-dispatch tune --scenario lunch.json --param reassignment_cost=0,100,300,1000 \
        --param freeze_horizon_s=0,300 --front reassigned_share,click_to_door_mean_min
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scenarios.model import load_scenario
from scenarios.replay.kpis import KPI_INFO, compute_kpis
from scenarios.replay.runner import ReplayJob, run_replays
from scenarios.replay.simulate import ReplayConfig, ReplayResult
from solver.params import (
    ParamsError,
    SolverParams,
    format_toml,
    format_value,
    parse_param,
)

#: KPIs in the tuning table, in order.
TABLE_KPIS = (
    "on_time_rate",
    "click_to_door_p90_min",
    "orders_per_rider_hour",
    "rider_hours_busy",
    "solver_latency_p99_ms",
    "shed_rate",
)
#: Default Pareto objectives: the trade-off the picture shows.
FRONT_KPIS = ("on_time_rate", "solver_latency_p99_ms")
#: The picture's x axis when the front has a single KPI (its y axis).
PICTURE_PARTNER = "solver_latency_p99_ms"
#: Short aliases: name -> (solver field, factor from the alias unit to the field's unit).
ALIASES = {"budget_ms": ("default_budget_s", 0.001), "budget_s": ("default_budget_s", 1.0)}


class TuneError(ValueError):
    """A bad tuning request: names the parameter, the value and the reason."""


@dataclass(frozen=True)
class ParamAxis:
    """One tuned parameter: grid values / choices, or a numeric range (search only).

    Attributes
    ----------
    name
        The ``SolverParams`` field.
    values
        Values (grid points, or the choices of a search); empty for a range.
    low, high
        Range bounds (search only).
    log
        Sample the range on a log scale.
    """

    name: str
    values: tuple[Any, ...] = ()
    low: float = 0.0
    high: float = 0.0
    log: bool = False

    @property
    def is_range(self) -> bool:
        """Whether the axis is a range rather than a list of values."""
        return not self.values

    def pick(self, u: float) -> Any:
        """The value at ``u`` in [0, 1): a choice, or a point of the range (rounded to an
        integer for integer parameters)."""
        if self.values:
            return self.values[min(int(u * len(self.values)), len(self.values) - 1)]
        if self.log:
            value = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        else:
            value = self.low + u * (self.high - self.low)
        if _field_type(self.name) == "int":
            return round(value)
        return float(f"{value:.4g}")


def _field_type(name: str) -> str:
    return next(str(f.type) for f in dataclasses.fields(SolverParams) if f.name == name)


def _solver_name(key: str) -> tuple[str, float]:
    """The solver field ``key`` names, and the factor from its unit (aliases)."""
    if key in ALIASES:
        return ALIASES[key]
    table, _, name = key.rpartition(".")
    fields = [f.name for f in dataclasses.fields(SolverParams)]
    if table == "server":
        raise TuneError(
            f"{key}: server settings do not act in an in-process replay; tune solver.* "
            f"parameters (or {', '.join(ALIASES)})"
        )
    if table not in ("", "solver") or name not in fields:
        close = difflib.get_close_matches(name, [*fields, *ALIASES], n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise TuneError(f"{key}: not a solver parameter{hint}")
    return name, 1.0


def _value(name: str, raw: str, factor: float) -> Any:
    try:
        value = parse_param(name, raw.strip())
    except ParamsError as exc:
        raise TuneError(f"solver.{name}={raw.strip()}: {exc.reason}") from None
    if factor != 1.0:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise TuneError(f"{name}={raw}: must be a number")
        value = float(value) * factor
    return value


def parse_axis(text: str) -> ParamAxis:
    """A ``--param`` argument: ``key=v1,v2,...`` or ``key=[log:]low..high``."""
    key, sep, spec = text.partition("=")
    if not sep or not spec.strip():
        raise TuneError(f"--param {text!r}: expected key=v1,v2,... or key=low..high")
    name, factor = _solver_name(key.strip())
    spec = spec.strip()
    log = spec.startswith("log:")
    body = spec.removeprefix("log:")
    if ".." in body:
        lo_text, _, hi_text = body.partition("..")
        low, high = _value(name, lo_text, factor), _value(name, hi_text, factor)
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high)):
            raise TuneError(f"{key}={spec}: a range needs numbers")
        if not low < high:
            raise TuneError(f"{key}={spec}: the range must go from low to high")
        if log and low <= 0:
            raise TuneError(f"{key}={spec}: a log range must start above 0")
        return ParamAxis(name, low=float(low), high=float(high), log=log)
    if log:
        raise TuneError(f"{key}={spec}: log: goes with a range (log:low..high)")
    values = tuple(_value(name, raw, factor) for raw in body.split(",") if raw.strip())
    if len(set(values)) != len(values):
        raise TuneError(f"{key}={spec}: repeated value")
    return ParamAxis(name, values=values)


@dataclass(frozen=True)
class Candidate:
    """One parameter set to evaluate.

    Attributes
    ----------
    index
        Its number in the table (1-based).
    changes
        The tuned fields and their values.
    params
        The full parameters (the base with ``changes``).
    """

    index: int
    changes: Mapping[str, Any]
    params: SolverParams

    def label(self) -> str:
        """``name=value`` of the tuned fields."""
        return ", ".join(f"{k}={format_value(v)}" for k, v in self.changes.items())


def _candidate(index: int, base: SolverParams, changes: dict[str, Any]) -> Candidate:
    try:
        return Candidate(index, changes, base.replace(**changes))
    except ParamsError as exc:
        raise TuneError(f"set {index} ({changes}): {exc}") from None


def grid_candidates(base: SolverParams, axes: Sequence[ParamAxis]) -> list[Candidate]:
    """Every combination of the axes' values (the last axis varies fastest)."""
    ranges = [a.name for a in axes if a.is_range]
    if ranges:
        raise TuneError(f"{', '.join(ranges)}: a range needs --trials N (a search)")
    _check_distinct(axes)
    combos = itertools.product(*(a.values for a in axes))
    return [
        _candidate(k, base, dict(zip((a.name for a in axes), combo, strict=True)))
        for k, combo in enumerate(combos, 1)
    ]


def search_candidates(
    base: SolverParams, axes: Sequence[ParamAxis], trials: int, *, seed: int = 0
) -> list[Candidate]:
    """``trials`` sets spread over the axes by a seeded Latin hypercube (each axis's range is
    cut in ``trials`` strata and each stratum used once): the same seed gives the same sets."""
    from scipy.stats import qmc

    if trials < 1:
        raise TuneError(f"--trials {trials}: must be >= 1")
    _check_distinct(axes)
    points = qmc.LatinHypercube(d=len(axes), seed=seed).random(trials)
    return [
        _candidate(k, base, {a.name: a.pick(float(u)) for a, u in zip(axes, row, strict=True)})
        for k, row in enumerate(points, 1)
    ]


def _check_distinct(axes: Sequence[ParamAxis]) -> None:
    if not axes:
        raise TuneError("give at least one --param")
    names = [a.name for a in axes]
    for name in names:
        if names.count(name) > 1:
            raise TuneError(f"{name}: given twice")


@dataclass
class TuneResult:
    """A parameter set's KPIs.

    Attributes
    ----------
    candidate
        The set.
    kpis
        Mean of each KPI over the scenarios (:data:`scenarios.replay.kpis.KPI_INFO`).
    per_scenario
        Scenario name -> its KPIs.
    on_front
        Whether no other set is at least as good on every front KPI and better on one.
    """

    candidate: Candidate
    kpis: dict[str, float]
    per_scenario: dict[str, dict[str, float]]
    on_front: bool = False


def pareto_front(points: Sequence[Sequence[float]], senses: Sequence[int]) -> list[bool]:
    """Which points no other point dominates; ``senses``: +1 higher is better, -1 lower."""
    signed = np.asarray(points, dtype=np.float64) * np.asarray(senses, dtype=np.float64)
    front = []
    for p in signed:
        dominated = np.any(np.all(signed >= p, axis=1) & np.any(signed > p, axis=1))
        front.append(not bool(dominated))
    return front


@dataclass
class TuneReport:
    """A finished tuning run.

    Attributes
    ----------
    scenarios
        Names of the scenarios replayed.
    results
        One per parameter set, in table order.
    front_kpis
        The KPIs of the Pareto front.
    chosen
        The set :func:`choose` picked.
    note
        Why that one.
    """

    scenarios: list[str]
    results: list[TuneResult]
    front_kpis: tuple[str, ...]
    chosen: TuneResult
    note: str

    @property
    def table_kpis(self) -> tuple[str, ...]:
        """The KPIs of the table: :data:`TABLE_KPIS`, then the front KPIs it lacks."""
        return table_kpis(self.front_kpis)

    def table(self) -> str:
        """One row per set: tuned values, KPIs (:attr:`table_kpis`), ``*`` on the Pareto
        front, ``<`` chosen."""
        names = list(self.results[0].candidate.changes) if self.results else []
        heads = ["set", *names]
        for kpi in self.table_kpis:
            unit = KPI_INFO[kpi][1]
            heads.append(f"{_SHORT[kpi]} ({unit})" if unit else _SHORT[kpi])
        heads.append("front")
        rows = []
        for r in self.results:
            cells = [str(r.candidate.index)]
            cells += [format_value(r.candidate.changes[n]) for n in names]
            cells += [_cell(k, r.kpis[k]) for k in self.table_kpis]
            cells.append(("*" if r.on_front else "") + (" <" if r is self.chosen else ""))
            rows.append(cells)
        widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(heads)]
        lines = ["  ".join(h.rjust(w) for h, w in zip(heads, widths, strict=True))]
        lines.append("-" * len(lines[0]))
        lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
        front = " vs ".join(_SHORT[k] for k in self.front_kpis)
        lines.append(
            f"* Pareto front on {front} (values as shown; equal ones tie);  < chosen: {self.note}"
        )
        return "\n".join(lines)

    def chosen_toml(self) -> str:
        """The chosen set as a ``[solver]`` table, with where it comes from as comments."""
        chosen = self.chosen
        kpis = ", ".join(
            f"{_SHORT[k]} {_cell(k, chosen.kpis[k])} {KPI_INFO[k][1]}".rstrip()
            for k in self.table_kpis
        )
        header = (
            f"chosen by `campus-dispatch tune` on {', '.join(self.scenarios)}:\n"
            f"set {chosen.candidate.index} ({chosen.candidate.label()}); {self.note}\n"
            f"Pareto front on {', '.join(self.front_kpis)}\n"
            f"KPIs (mean over the scenarios): {kpis}\n"
            "apply to a running server: campus-dispatch admin update --file THIS_FILE"
        )
        return format_toml({"solver": chosen.candidate.params.to_dict()}, header)


_SHORT = {
    "on_time_rate": "on-time",
    "click_to_door_p90_min": "c2d p90",
    "orders_per_rider_hour": "orders/rider-h",
    "rider_hours_busy": "busy rider-h",
    "solver_latency_p99_ms": "latency p99",
    "shed_rate": "shed",
    "click_to_door_mean_min": "c2d mean",
    "reassigned_share": "reassigned",
    "moves_per_order": "moves/order",
    "max_moves": "max moves",
    "eta_churn_mean_min": "ETA churn",
    "eta_churn_p90_min": "ETA churn p90",
    "first_eta_error_mean_min": "1st-ETA error",
    "first_eta_error_p90_min": "1st-ETA error p90",
}
for _kpi in KPI_INFO:
    _SHORT.setdefault(_kpi, _kpi)


def table_kpis(front_kpis: Sequence[str]) -> tuple[str, ...]:
    """The KPIs a tuning table shows: :data:`TABLE_KPIS`, then those of ``front_kpis`` it
    lacks (the front is always in the table)."""
    return (*TABLE_KPIS, *(k for k in dict.fromkeys(front_kpis) if k not in TABLE_KPIS))


def picture_kpis(front_kpis: Sequence[str]) -> tuple[str, str]:
    """The KPIs of the trade-off picture, ``(y, x)``: the first front KPI up, the second
    across (the default front: on-time rate against latency p99). With a single front KPI,
    it against :data:`PICTURE_PARTNER` (latency p99); when that single KPI is latency p99,
    on-time rate against it (the default picture). Further front KPIs are not drawn."""
    if not front_kpis:
        raise TuneError("no front KPI")
    if len(front_kpis) >= 2:
        return front_kpis[0], front_kpis[1]
    if front_kpis[0] == PICTURE_PARTNER:
        return "on_time_rate", PICTURE_PARTNER
    return front_kpis[0], PICTURE_PARTNER


def _cell(kpi: str, value: float) -> str:
    if KPI_INFO[kpi][1] == "%":
        return f"{100 * value:.1f}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def shown(kpi: str, value: float) -> float:
    """``value`` as the table shows it (percentages to 0.1 %, values from 10 up to 0.1, below
    10 to 0.01; a percentage stays in %): what the front and the choice compare, so that sets
    the table shows equal are ties, treated alike."""
    return float(_cell(kpi, value))


def mark_front(results: Sequence[TuneResult], front_kpis: Sequence[str]) -> None:
    """Set ``on_front`` of every result: the Pareto front on ``front_kpis``, compared as the
    table shows them (:func:`shown`). Tie rule: sets the table shows equal on every front KPI
    are ties, and are all on the front or all off it (starred alike)."""
    senses = [KPI_INFO[k][2] for k in front_kpis]
    marks = pareto_front([[shown(k, r.kpis[k]) for k in front_kpis] for r in results], senses)
    for r, mark in zip(results, marks, strict=True):
        r.on_front = mark


def choose(
    results: Sequence[TuneResult],
    *,
    max_latency_ms: float | None = None,
    front_kpis: Sequence[str] = FRONT_KPIS,
) -> tuple[TuneResult, str]:
    """The set to ship and why: among the front sets (all sets when none is marked), the best
    on-time rate within the latency cap; ties: the better value of each front KPI in turn,
    then lower latency p99, then lower click-to-door p90, then the lower set number. With no
    front set under the cap, the front set with the lowest latency p99. Values are compared
    as the table shows them (:func:`shown`).

    The rule holds whatever the front is on: the front KPIs say which sets make no needless
    sacrifice (on the default front, of on-time rate for latency; on a stability front such
    as ``reassigned_share,click_to_door_mean_min``, of plan stability for delivery time), and
    on-time rate, the promise to the student, picks among them. A set off the front is never
    chosen, even with a better on-time rate: put ``on_time_rate`` on the front to weigh it."""

    def kpi(r: TuneResult, name: str) -> float:
        return shown(name, r.kpis[name])

    def better(r: TuneResult, name: str) -> float:  # lower is better
        return -KPI_INFO[name][2] * kpi(r, name)

    front = [r for r in results if r.on_front] or list(results)
    within = [
        r
        for r in front
        if max_latency_ms is None or r.kpis["solver_latency_p99_ms"] <= max_latency_ms
    ]
    if not within:
        best = min(front, key=lambda r: kpi(r, "solver_latency_p99_ms"))
        return best, f"no set has latency p99 <= {max_latency_ms:g} ms: the fastest"
    best = min(  # the first of equals: the lowest set number
        within,
        key=lambda r: (
            -kpi(r, "on_time_rate"),
            *(better(r, name) for name in front_kpis),
            kpi(r, "solver_latency_p99_ms"),
            kpi(r, "click_to_door_p90_min"),
        ),
    )
    cap = "" if max_latency_ms is None else f" with latency p99 <= {max_latency_ms:g} ms"
    return best, f"best on-time rate on the front{cap}"


def tune(
    scenario_paths: Sequence[Path],
    candidates: Sequence[Candidate],
    *,
    config: ReplayConfig | None = None,
    processes: int = 1,
    front_kpis: Sequence[str] = FRONT_KPIS,
    max_latency_ms: float | None = None,
    progress: bool = False,
) -> TuneReport:
    """Replay every scenario with every set (policy ``search``, in-process solver, budget
    ``default_budget_s``), then the KPIs, the front and the choice.

    Parameters
    ----------
    scenario_paths
        Scenario files.
    candidates
        Parameter sets (:func:`grid_candidates`, :func:`search_candidates`).
    config
        Replay settings (batch interval ...).
    processes
        Replays run at once, each in its own process.
    front_kpis
        KPIs of the Pareto front (directions from :data:`scenarios.replay.kpis.KPI_INFO`):
        delivery, latency or plan-stability KPIs alike; the table always shows them.
    max_latency_ms
        Latency p99 cap of the choice.
    progress
        A progress bar on stderr (replays done, ETA).
    """
    for kpi in front_kpis:
        if kpi not in KPI_INFO or KPI_INFO[kpi][2] == 0:
            better = [k for k, info in KPI_INFO.items() if info[2]]
            raise TuneError(f"front KPI {kpi!r}: must be one of {', '.join(better)}")
    if not candidates:
        raise TuneError("no parameter set to evaluate")
    paths = [Path(p) for p in scenario_paths]
    if not paths:
        raise TuneError("give at least one --scenario")
    names = [load_scenario(p).name for p in paths]  # validates every file before any replay
    config = config or ReplayConfig()
    jobs = [
        ReplayJob(path, "search", c.params, c.params.default_budget_s, config)
        for c in candidates
        for path in paths
    ]
    bar = _Bar(len(jobs)) if progress else None
    try:
        replays = run_replays(jobs, processes=processes, on_done=bar)
    finally:
        if bar is not None:
            bar.close()
    results = _collect(candidates, names, replays)
    mark_front(results, front_kpis)
    chosen, note = choose(results, max_latency_ms=max_latency_ms, front_kpis=front_kpis)
    return TuneReport(names, results, tuple(front_kpis), chosen, note)


def _collect(
    candidates: Sequence[Candidate], names: Sequence[str], replays: Sequence[ReplayResult]
) -> list[TuneResult]:
    results = []
    per = len(names)
    for k, candidate in enumerate(candidates):
        mine = replays[k * per : (k + 1) * per]
        per_scenario = {name: compute_kpis(r) for name, r in zip(names, mine, strict=True)}
        mean = {kpi: float(np.mean([v[kpi] for v in per_scenario.values()])) for kpi in KPI_INFO}
        results.append(TuneResult(candidate, mean, per_scenario))
    return results


class _Bar:
    """A tqdm bar over replays, advanced from :func:`run_replays`' ``on_done``."""

    def __init__(self, total: int) -> None:
        import sys

        from tqdm import tqdm

        self.bar = tqdm(
            total=total, desc="tune", unit="replay", file=sys.stderr, disable=None, leave=True
        )

    def __call__(self, result: ReplayResult) -> None:
        self.bar.update(1)
        self.bar.set_postfix_str(f"last: {result.scenario}", refresh=False)

    def close(self) -> None:
        self.bar.close()


def write_tuning(report: TuneReport, out_dir: str | Path, *, picture: bool = True) -> list[Path]:
    """Write ``tune.csv`` (a row per set and scenario, and the means), ``tune.json``,
    ``chosen.toml`` and ``tradeoff.png`` (the first front KPI against the second,
    :func:`picture_kpis`; by default on-time rate vs latency p99) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = list(report.results[0].candidate.changes)
    csv_path = out / "tune.csv"
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["set", *names, "scenario", "on_front", "chosen", *KPI_INFO])
        for r in report.results:
            values = [format_value(r.candidate.changes[n]) for n in names]
            rows = [*r.per_scenario.items(), ("mean", r.kpis)]
            for scenario, kpis in rows:
                writer.writerow(
                    [
                        r.candidate.index,
                        *values,
                        scenario,
                        int(r.on_front),
                        int(r is report.chosen),
                        *(kpis[k] for k in KPI_INFO),
                    ]
                )
    json_path = out / "tune.json"
    json_path.write_text(
        json.dumps(
            {
                "scenarios": report.scenarios,
                "front_kpis": list(report.front_kpis),
                "chosen": report.chosen.candidate.index,
                "note": report.note,
                "sets": [
                    {
                        "set": r.candidate.index,
                        "changes": dict(r.candidate.changes),
                        "on_front": r.on_front,
                        "kpis": r.kpis,
                        "per_scenario": r.per_scenario,
                    }
                    for r in report.results
                ],
            },
            indent=2,
        )
        + "\n"
    )
    toml_path = out / "chosen.toml"
    toml_path.write_text(report.chosen_toml())
    written = [csv_path, json_path, toml_path]
    if picture:
        written.append(plot_report(report, out / "tradeoff.png"))
    return written


def plot_report(report: TuneReport, path: str | Path) -> Path:
    """The trade-off picture of ``report`` (:func:`scenarios.replay.plots.plot_tradeoff`): the
    first front KPI (y) against the second (x) (:func:`picture_kpis`), each set at its values
    as the table shows them (:func:`shown`: what the front compares, so that a set drawn
    dominated is off the front and ties fall together), the front sets in blue with starred
    labels, the step line through those of them no other front set dominates on the two
    drawn KPIs (all of them on a two-KPI front), the chosen set ringed."""
    from scenarios.replay.plots import plot_tradeoff

    def drawn_value(kpi: str, r: TuneResult) -> float:  # shown, in the KPI's own form
        return shown(kpi, r.kpis[kpi]) / (100 if KPI_INFO[kpi][1] == "%" else 1)

    y_kpi, x_kpi = picture_kpis(report.front_kpis)
    results = report.results
    front = [r for r in results if r.on_front]
    drawn = (
        pareto_front(
            [[shown(k, r.kpis[k]) for k in (y_kpi, x_kpi)] for r in front],
            [KPI_INFO[y_kpi][2], KPI_INFO[x_kpi][2]],
        )
        if front
        else []
    )
    on_line = {id(r) for r, mark in zip(front, drawn, strict=True) if mark}
    return plot_tradeoff(
        [r.candidate.index for r in results],
        [drawn_value(y_kpi, r) for r in results],
        [drawn_value(x_kpi, r) for r in results],
        [r.on_front for r in results],
        results.index(report.chosen),
        path,
        title=f"{', '.join(report.scenarios)}: {len(results)} parameter sets",
        y_kpi=y_kpi,
        x_kpi=x_kpi,
        on_line=[id(r) in on_line for r in results],
    )
