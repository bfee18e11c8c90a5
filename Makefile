# Set-up and everyday jobs. `make demo` and `make test` are all a fresh Debian machine needs.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_TEST := chromium chromium-driver fonts-dejavu-core fonts-liberation2 fonts-oxygen
# Typefaces the committed model is pretrained on; more faces, better generalisation.
APT_FONTS := fonts-dejavu-core fonts-dejavu-extra fonts-liberation2 fonts-freefont-ttf \
	fonts-roboto-unhinted fonts-open-sans fonts-lato fonts-crosextra-carlito \
	fonts-crosextra-caladea fonts-inconsolata fonts-cantarell fonts-hack \
	fonts-jetbrains-mono fonts-croscore fonts-go fonts-noto-mono fonts-b612 \
	fonts-comic-neue fonts-courier-prime fonts-quicksand fonts-league-spartan \
	fonts-mplus fonts-firacode fonts-sil-andika fonts-sil-charis fonts-urw-base35 fonts-texgyre
MNIST ?= data/mnist/mnist-digits.npz
# Where `make model` writes its model (never over an existing one).
MODEL ?= models/gridreader-v7

.PHONY: demo test lint typecheck pytest sysdeps-test sysdeps-fonts model samples bench devset devset-photos clean

$(STAMP): pyproject.toml
	@# Debian ships venv support separately (python3-venv); install it if missing.
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
	  [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null \
	  && $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

demo: $(STAMP)
	$(BIN)/gridreader batch data/samples --out out/demo
	@echo "CSVs in out/demo/, per-cell confidences in out/demo/report.jsonl, uncertain cells in out/demo/review/, all of it on one page: out/demo/report.html"
	@echo "Scored against the pages' own numbers (data/samples/*.csv):"
	$(BIN)/gridreader eval data/samples

# Installs apt packages only when they are missing, and only as root.
define apt_ensure
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing apt packages:$$missing (run as root or install them)"; exit 1; fi; \
	fi
endef

sysdeps-test:
	$(call apt_ensure,$(APT_TEST))

sysdeps-fonts:
	$(call apt_ensure,$(APT_FONTS))

lint: $(STAMP)
	$(BIN)/ruff check gridreader capture labeller tests tools
	$(BIN)/ruff format --check gridreader capture labeller tests tools

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) sysdeps-test
	$(BIN)/pytest -q -p no:cacheprovider

test: sysdeps-test $(STAMP) lint typecheck pytest

# Trains the committed default model's recipe again, in one run: the five stages
# that made gridreader-v2 .. v6 (see its card's lineage and the README). It writes
# $(MODEL) with model.keras, model.tflite and card.json; compare it with `make bench`.
model: $(STAMP) sysdeps-fonts
	$(BIN)/gridreader train --classes 0-36 --mnist $(MNIST) --out $(MODEL) \
	  --stage samples=160000,epochs=11,lr=2e-3,handwritten=0.45,small_text=0,seed=0 \
	  --stage samples=60000,epochs=3,lr=4e-4,handwritten=0.45,small_text=0.4,seed=0 \
	  --stage samples=120000,epochs=3,lr=3e-4,handwritten=0.45,small_text=0.5,seed=0 \
	  --stage samples=60000,epochs=1,lr=1.5e-4,handwritten=0.55,small_text=0.5,seed=0 \
	  --stage samples=60000,epochs=2,lr=1.5e-4,handwritten=0.5,small_text=0.5,seed=0

# Re-captures data/samples from data/pages with real headless Chromium.
samples: $(STAMP) sysdeps-test
	$(BIN)/python -m capture.samples data/pages data/samples

# The web part of the generated development set (framework CSS vendored under data/web-css).
# The unseen split's fonts are in no training font list (APT_FONTS) on purpose.
APT_UNSEEN := fonts-clear-sans fonts-cabin fonts-anonymous-pro fonts-ebgaramond fonts-oxygen
devset: $(STAMP) sysdeps-test sysdeps-fonts
	$(call apt_ensure,$(APT_UNSEEN))
	rm -rf data/devset/web
	$(BIN)/python -m capture.webpages data/devset/web --count 48

# The benchmark; --record stores the figures in the default model's card.
bench: $(STAMP)
	$(BIN)/gridreader eval data/bench/dev/screens --record
	$(BIN)/gridreader eval data/bench/dev/scans --record
	# Throughput over the whole dev bench (screens and scans in one run).
	rm -rf out/dev-all && mkdir -p out/dev-all
	ln -s $(abspath data/bench/dev)/*/* out/dev-all/
	$(BIN)/gridreader eval out/dev-all --workers 1
	$(BIN)/gridreader eval out/dev-all

# Regenerates the photo part of the development set (60 phone photos of printed grids,
# six families, three of them held out; see data/devset/photos/README.md).
devset-photos: $(STAMP) sysdeps-fonts
	rm -rf data/devset/photos.new
	$(BIN)/python -m gridreader.synth.photos data/devset/photos.new --per-family 10 --mnist $(MNIST)
	cp data/devset/photos/README.md data/devset/photos.new/ 2>/dev/null || true
	rm -rf data/devset/photos && mv data/devset/photos.new data/devset/photos

clean:
	rm -rf out .pytest_cache .mypy_cache .ruff_cache
