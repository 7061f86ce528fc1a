# The front door: `make run` starts a local cluster, `make test` checks everything.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit integration bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]' uvloop
	touch $(STAMP)

$(VENV)/.clients: $(STAMP) scripts/install-test-clients.sh scripts/install-test-system.sh scripts/apt-need.sh
	bash scripts/install-test-system.sh
	bash scripts/install-test-clients.sh $(PY)
	touch $@

run: $(STAMP)
	bash scripts/install-run-system.sh
	$(VENV)/bin/meseta local --work-dir ./work

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy

test: $(STAMP) $(VENV)/.clients lint typecheck
	$(VENV)/bin/pytest -q

bench: $(STAMP)
	$(PY) benchmarks/launch_throughput.py
	$(PY) benchmarks/sandbox_fs.py
	$(PY) benchmarks/allocation_cycle.py
	taskset -c 0 $(PY) benchmarks/allocator_suite.py --runs 5
	$(PY) benchmarks/agent_launch_kill.py
	$(PY) benchmarks/agent_recovery.py
	$(PY) benchmarks/failover_reregistration.py
	$(PY) benchmarks/ha_failover.py --rounds 20 --session-timeout 2
	$(PY) benchmarks/ha_failover.py --rounds 20 --session-timeout 1
	$(PY) benchmarks/services_scale.py
	$(PY) benchmarks/services_failover.py --session-timeout 10 --rounds 3
	$(PY) benchmarks/services_failover.py --session-timeout 2 --rounds 3
	$(PY) benchmarks/services_rolling.py
	$(PY) benchmarks/job_schedules.py --runs 5
	$(PY) benchmarks/jobs_accuracy.py
	$(PY) benchmarks/jobs_failover.py
	$(PY) benchmarks/mapreduce_wordcount.py --megabytes 64 --rounds 3
	$(PY) benchmarks/containers.py
	$(PY) benchmarks/dns_latency.py
	$(PY) benchmarks/dns_throughput.py
	$(PY) benchmarks/dns_throughput.py --no-cache
	$(PY) benchmarks/lb_rolling.py

clean:
	rm -rf $(VENV) work .pytest_cache .mypy_cache .ruff_cache
