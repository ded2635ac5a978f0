# chatwire — every target creates the virtualenv it needs on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 5000
SERVER ?=

.PHONY: test test-verdicts lint typecheck check-code venv speedups server client conformance bench clean vectors docs bench-smoke cluster

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# The optional compiled twins of the SEND scanner and the batch builder (spec/_speedups.c):
# built where a C compiler and Python's headers are, else one line says the pure-Python path
# is used. CHATWIRE_PURE=1 makes a process use the pure-Python path even when they are built.
speedups: $(STAMP)
	$(PY) -m spec._speedups_build

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(STAMP)
	$(PY) -m mypy

# Everything but the suite-of-suites runs (about four minutes on two cores), on the pure-Python
# path: the compiled twins are optional, so what every machine runs is what is tested by default.
# The twins are held to it by their own tests here, and serve every make test-verdicts run.
test: speedups lint typecheck
	CHATWIRE_PURE=1 $(PY) -m pytest -m "not verdicts"

# The suite's own verdicts: the zoo of broken servers and the reference at seven legal settings
# and beside other users, each a whole conformance run (about five minutes; CI runs it too),
# with the compiled twins where make speedups built them.
test-verdicts: speedups
	$(PY) -m pytest -m verdicts

# Rebuild spec/vectors/*.json from spec/schema.py (tests fail while they are out of date).
vectors: $(STAMP)
	$(PY) -m spec.vectorgen --write

# Regenerate PROTOCOL.md §17/§18 from spec/schema.py and spec/constants.py (tests fail while stale).
docs: $(STAMP)
	$(PY) -m spec.doctables --write

server: speedups
	$(PY) -m reference.server --host $(HOST) --port $(PORT)

# Exit status 5 (the server ended the session: the client's last line says how) is no make error.
client: $(STAMP)
	@$(PY) -m reference.client --host $(HOST) --port $(PORT) || [ $$? -eq 5 ]

# Redis and three cluster nodes on ports 5001-5003 (PROTOCOL.md §20); try: make client PORT=5002
cluster: speedups
	$(PY) -m reference.cluster --nodes 3 --base-port 5001

# The standard bench sweep beside the naive and raw baselines (a few minutes on 2 cores).
bench: speedups
	$(PY) -m bench all --compare --json reports/bench.json

# Every bench scenario at tiny sizes, as tests/test_bench_smoke.py runs it.
bench-smoke: speedups
	$(PY) -m bench all --smoke --compare --json reports/bench-smoke.json

# The conformance suite: against SERVER=HOST:PORT, or (no SERVER) against the reference server
# started on a free port with short time limits and a small max_frame, so every case can run.
CONFORMANCE_REFERENCE := $(PY) -m reference.server --port 0 --idle-timeout 2 \
	--handshake-timeout 2 --slow-timeout 1 --max-clients 150 --max-frame 2048 --max-text 1900
conformance: speedups
ifeq ($(SERVER),)
	$(PY) -m conformance --launch "$(CONFORMANCE_REFERENCE)" $(CONFORMANCE_ARGS)
else
	$(PY) -m conformance --server $(SERVER) $(CONFORMANCE_ARGS)
endif

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis spec/_speedups*.so
