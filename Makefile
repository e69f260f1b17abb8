# Two commands on a fresh clone: `make demo` and `make test`. Each creates .venv on first use and
# installs the locked set (requirements.lock: every dependency at an exact version and hash).
SHELL := /bin/bash
PY ?= python3.11
# The default Python gets .venv; another (make test PY=python3.13) gets its own .venv-python3.13.
VENV ?= $(if $(filter python3.11,$(PY)),.venv,.venv-$(notdir $(PY)))
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements.lock
# uv installs the lock; pinned so a new uv release cannot change how the lock is read.
UV_VERSION := 0.13.9
UV := $(BIN)/uv
DEMO_SCALE ?= small
DEMO_OUT ?= demo_out
DEMO_CKPT := $(DEMO_OUT)/run/checkpoints/last.ckpt
# the HEAR validator's own install step (see hear-validate)
HEAR_STAMP := $(VENV)/.hear-installed
HEAR_DEPS := "tensorflow-cpu==2.21.*"
HEAR_VALIDATOR := "hearvalidator==2021.0.2"

.PHONY: install check-deps system-deps lock test test-slow test-all demo hear-validate bench clean

$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check "uv==$(UV_VERSION)" 2>&1 | grep -v "is ignored"; test $${PIPESTATUS[0]} -eq 0
	$(UV) pip install -q --python $(BIN)/python --require-hashes -r $(LOCK)
	$(UV) pip install -q --python $(BIN)/python --no-deps --no-build-isolation -e .
	$(BIN)/python -m ssl_music.deps
	touch $(STAMP)

install: $(STAMP)

# Imports every compiled dependency; names the mismatched pair (e.g. torch vs torchaudio) if any.
check-deps: $(STAMP)
	$(BIN)/python -m ssl_music.deps

# Refresh the lock after changing a range in pyproject.toml (see README, "Updating dependencies").
lock: $(STAMP)
	$(UV) pip compile pyproject.toml --extra test --universal --python-version 3.11 \
	    --generate-hashes -o $(LOCK)
	$(BIN)/python -m ssl_music.deps --write-pins

test: $(STAMP)
	WANDB_MODE=disabled $(BIN)/python -m pytest -m "not slow" -q

test-slow: $(STAMP) $(HEAR_STAMP) system-deps
	WANDB_MODE=disabled $(BIN)/python -m pytest -m slow -q

# Everything: the fast suite, then the slow one (real SLURM, multi-process DDP, the wheel outside the
# checkout, the headless-browser page test, the HEAR validator). Two runs so a slow failure cannot hide a
# fast one's summary; both always run.
test-all: $(STAMP) $(HEAR_STAMP) system-deps
	WANDB_MODE=disabled $(BIN)/python -m pytest -m "not slow" -q; fast=$$?; \
	WANDB_MODE=disabled $(BIN)/python -m pytest -m slow -q; slow=$$?; \
	test $$fast -eq 0 -a $$slow -eq 0

# What the slow tests need from the system: a headless browser (chromium + chromedriver) and SLURM + munge.
# Installed with apt-get when missing and this is root; otherwise those tests skip and say why.
SYSTEM_BINS := chromium chromedriver munged slurmctld slurmd sbatch
SYSTEM_PKGS := chromium chromium-driver munge slurmctld slurmd slurm-client
system-deps:
	@missing=$$(for b in $(SYSTEM_BINS); do command -v $$b >/dev/null || echo $$b; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then \
	    echo "missing $$missing (not root or no apt-get): the tests that need them will skip"; exit 0; fi; \
	echo "installing $(SYSTEM_PKGS) for the slow tests (missing: $$missing)"; \
	export DEBIAN_FRONTEND=noninteractive; apt-get update -q >/dev/null && apt-get install -y -q $(SYSTEM_PKGS) >/dev/null

demo: $(STAMP)
	$(BIN)/ssl-music demo --out $(DEMO_OUT) --scale $(DEMO_SCALE)

# hear-validator (PyPI hearvalidator) checks ssl_music.hear against the HEAR 2021 API. It imports TensorFlow
# even for torch models, so it is installed here, not in the default set: tensorflow-cpu constrained by the
# lock (no locked package moves), then hearvalidator without its dependencies (it asks for the full
# `tensorflow`, a second copy of the same module). 2021.0.2 is the newest release pip finds for it.
$(HEAR_STAMP): $(STAMP)
	$(UV) pip install -q --python $(BIN)/python -c $(LOCK) $(HEAR_DEPS)
	$(UV) pip install -q --python $(BIN)/python --no-deps $(HEAR_VALIDATOR)
	touch $(HEAR_STAMP)

$(DEMO_CKPT): | $(STAMP)
	$(MAKE) demo

# The validator on the demo checkpoint and on its export (CPU, or the GPU when there is one).
hear-validate: $(HEAR_STAMP) $(DEMO_CKPT)
	$(BIN)/ssl-music export --checkpoint $(DEMO_CKPT) --out $(DEMO_OUT)/export
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/hear-validator ssl_music.hear -m $(DEMO_CKPT)
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/hear-validator ssl_music.hear -m $(DEMO_OUT)/export

bench: $(STAMP)
	# left out: real_music.py (Debian music packages, ~15 min of pretraining) and the two that read your data
	# (embedding_blocks.py: an evaluated run; shard_stages.py: a folder of audio); run those directly
	for f in benchmarks/*.py; do case $$f in */real_music.py|*/embedding_blocks.py|*/shard_stages.py) continue;; esac; echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf .venv .venv-* $(DEMO_OUT) .pytest_cache
