# campus-dispatch: one command to run the service, one to run the tests.
# The virtual environment is created on first use and refreshed when pyproject.toml changes.

PYTHON_SYS ?= python3
VENV       ?= .venv
PY         := $(VENV)/bin/python
SHARED     ?= ../shared/data
COMMA      := ,
CAMPUS     ?= northwestern
export CAMPUS

.DEFAULT_GOAL := help
.PHONY: help venv constraints protos run info solve-example replay test test-slow fuzz lint check-monitoring bench bench-maps bench-greedy bench-meal bench-solver bench-service bench-replay bench-storm bench-storm-guard bench-campuses load load-cluster load-capacity load-record wheel clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

# constraints.txt pins the versions the suite was run with: a free resolve once paired
# ortools 9.10 with protobuf 7, and the routing solver segfaulted.
PIP_INSTALL := $(PY) -m pip install --quiet -c constraints.txt

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON_SYS) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PIP_INSTALL) -e '.[dev]' --config-settings editable_mode=compat
	touch $@

# numba's cache of the kernel, compiled again whenever kernel.py changes (not inside a solve)
$(VENV)/.kernel: $(VENV)/.installed solver/engines/kernel.py
	@echo "compiling the solver kernel (numba, once: under a minute)"
	$(PY) -c "from solver.engines.kernel import warm_up; warm_up()"
	touch $@

$(VENV)/.installed-bench: $(VENV)/.installed
	$(PIP_INSTALL) -e '.[dev,bench]' --config-settings editable_mode=compat
	touch $@

venv: $(VENV)/.kernel  ## create .venv, install the project, compile the solver kernel

PROTO     := protos/campus_dispatch/v1/dispatch.proto protos/campus_dispatch/v1/admin.proto
PROTO_GEN := $(patsubst protos/%.proto,api/pb/%_pb2.py,$(PROTO))

$(PROTO_GEN) &: $(PROTO) $(VENV)/.installed
	$(PY) -m grpc_tools.protoc -Iapi/pb=protos --python_out=. --grpc_python_out=. \
		--pyi_out=. $(PROTO)

protos: $(PROTO_GEN)  ## generate the gRPC code from protos/ into api/pb/

wheel: venv  ## build the wheel into dist/ (the build generates the gRPC code itself)
	$(PY) -m pip wheel --no-deps -w dist .

run: venv protos  ## serve the bundled campuses on 127.0.0.1:50051 (PORT, METRICS_PORT, CAMPUS override)
	$(PY) -m campus_dispatch serve

info: venv  ## load a bundled campus (CAMPUS=northwestern), build its travel tables, print a summary
	$(PY) -m campus_maps info $(CAMPUS)

solve-example: venv protos  ## send examples/solve_request.json to a running server (make run first)
	$(PY) -m campus_dispatch solve examples/solve_request.json --server 127.0.0.1:$${PORT:-50051}

replay: venv protos  ## replay the Northwestern lunch scenario with every policy into replay-out/ (KPIs, PNGs)
	$(PY) -m campus_dispatch replay scenarios/data/northwestern-lunch.json --out replay-out

test: venv protos  ## run the test suite (long runs are behind the `slow` marker)
	$(PY) -m pytest -q

test-slow: venv protos  ## run only the long tests
	$(PY) -m pytest -q -m slow

# FUZZ_REQUESTS valid and as many invalid generated requests through an in-process server on
# every bundled campus; exits non-zero on any answer but OK (checked plan) or INVALID_ARGUMENT.
FUZZ_REQUESTS ?= 2500
fuzz: venv protos  ## 2 x FUZZ_REQUESTS (2500) generated Solve requests: only OK and INVALID_ARGUMENT pass
	FUZZ_REQUESTS=$(FUZZ_REQUESTS) $(PY) -m pytest -q -s -m slow tests/server/test_properties.py

lint: venv protos  ## ruff and mypy
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

# promtool and amtool come from Debian's prometheus packages, unpacked into .cache/prometheus
# (no root, no service started) when they are not on PATH.
PROMTOOL ?= $(or $(shell command -v promtool),.cache/prometheus/usr/bin/promtool)
AMTOOL   ?= $(or $(shell command -v amtool),.cache/prometheus/usr/bin/amtool)

.cache/prometheus/usr/bin/promtool .cache/prometheus/usr/bin/amtool &:
	mkdir -p .cache/prometheus/deb
	cd .cache/prometheus/deb && { apt-get download prometheus prometheus-alertmanager \
		|| { apt-get update -qq && apt-get download prometheus prometheus-alertmanager; }; }
	for deb in .cache/prometheus/deb/*.deb; do dpkg-deb -x $$deb .cache/prometheus; done

check-monitoring: venv $(PROMTOOL) $(AMTOOL)  ## validate monitoring/ with promtool (rules + their unit tests) and amtool
	$(PROMTOOL) check rules monitoring/alerts.yml
	$(PROMTOOL) test rules monitoring/alerts.test.yml
	$(PROMTOOL) check config monitoring/prometheus.yml
	$(AMTOOL) check-config monitoring/alertmanager.yml
	PROMTOOL=$(PROMTOOL) $(PY) -m pytest -q tests/monitoring/test_monitoring.py

bench: bench-maps bench-greedy bench-meal bench-solver bench-service bench-replay bench-storm bench-storm-guard bench-campuses  ## all benchmarks (SHARED=path to the shared data folder)

bench-maps: venv  ## travel tables on Northwestern: cold/warm load, 300x300 matrix vs networkx Dijkstra
	$(PY) bench/bench_maps.py --campus $(CAMPUS)

bench-greedy: venv  ## the greedy insertion alone at 60/20, 200/50 and 400/80 (target: 10 ms at 200/50)
	$(PY) bench/bench_greedy.py

bench-meal: venv  ## meal batches on Northwestern's travel tables: greedy and 0.2 s / 1 s vs a 30 s run (QUICK=1: smoke)
	$(PY) bench/bench_meal.py --campus $(CAMPUS) $(if $(QUICK),--quick)

bench-service: venv protos  ## closed-loop gRPC load (1/2/4/8 clients, 60-order requests, 200 ms and 1 s) vs in-process
	$(PY) bench/bench_service.py --campus $(CAMPUS) $(if $(QUICK),--seconds 5 --clients 1$(COMMA)4)

bench-solver: $(VENV)/.installed-bench  ## ours vs VROOM vs PyVRP on Li & Lim and Solomon at 0.2 s and 1 s (QUICK=1: smoke run)
	$(PY) bench/bench_solver.py --data $(SHARED) $(if $(QUICK),--quick)

bench-storm: venv protos  ## order storms: 1,000 / 2,000-order requests through the service, partitioned vs not vs a 30 s reference (QUICK=1: smoke)
	$(PY) bench/bench_storm.py --campus $(CAMPUS) $(if $(QUICK),--quick)

bench-storm-guard: venv protos  ## storm guard off vs on: lunch, event, surge and four storms replayed through the service; precision/recall, flagged share, legit on-time (QUICK=1: lunch + storm)
	$(PY) bench/bench_storm_guard.py $(if $(QUICK),--quick)

bench-campuses: venv protos  ## onboarding a campus cold, and one server over 100 onboarded campuses vs one (QUICK=1: 20)
	$(PY) bench/bench_campuses.py $(if $(QUICK),--quick)

bench-replay: venv protos  ## policies by delivery KPIs and plan stability: Northwestern lunch and storm + 3 MDRP instances; exits 1 on a missed target (QUICK=1: tiny campus)
	$(PY) bench/bench_replay.py --data $(SHARED) $(if $(QUICK),--quick)

# Load tests (locust, loopback only, bounded runs; reports under $(LOAD_OUT)/). The exit code
# is the SLO verdict: p99 <= BUDGET_MS + 50 ms and errors <= 1 % (RESOURCE_EXHAUSTED excluded).
LOAD_OUT  ?= load-out
SHAPE     ?= lunch
USERS     ?= 4
BUDGET_MS ?= 200

load: venv protos  ## one server, headless locust lunch rush (90 s; SHAPE=spike|soak, USERS, BUDGET_MS): SLO verdict, CSV + HTML in load-out/single
	$(PY) -m load.run --shape $(SHAPE) --shape-users $(USERS) --budget-ms $(BUDGET_MS) \
		--out $(LOAD_OUT)/single

load-cluster: venv protos  ## two servers, client-side round_robin, one SIGKILLed 45 s into a 90 s run: failover report in load-out/cluster
	$(PY) -m load.run --replicas 2 --kill-after 45 --shape soak --shape-seconds 90 \
		--shape-users $(USERS) --budget-ms $(BUDGET_MS) --out $(LOAD_OUT)/cluster

load-capacity: venv protos  ## stepped load (~30 min; QUICK=1: ~4 min): p99 crossing with shedding on/off at 200 ms and 1 s, shed at 2x/4x, 1 vs 2 replicas
	$(PY) -m load.capacity --out $(LOAD_OUT)/capacity \
		$(if $(QUICK),--budgets 0.2 --shedding on --step-s 15 --warmup-s 3 --max-steps 5)

load-record: venv  ## re-record load/requests/northwestern-lunch (SolveRequests of a greedy Northwestern lunch replay)
	$(PY) -m load.recorded scenarios/data/northwestern-lunch.json --every 20

constraints: venv  ## re-pin constraints.txt to what .venv has now (after a deliberate upgrade)
	{ sed -n '/^#/p' constraints.txt; $(PY) -m pip freeze --exclude-editable \
		| grep -v -i '^\(pip\|setuptools\|campus-dispatch\)=='; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

clean:  ## remove the virtual environment and caches
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache build dist
