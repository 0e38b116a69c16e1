# Each target bootstraps .venv itself. Python 3.11 is the tested version.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.sdnb-installed
TINY   := SDNB_TINY=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1  # tiny models: threads only add overhead

# Colab's widget stack (ipywidgets 7.7.1, ipykernel 6.17.1), laid over the venv for a second run of the widget tests
COLAB_WIDGETS := $(VENV)/colab-widgets

.PHONY: demo test lab bench browser-deps clean

$(STAMP): pyproject.toml requirements.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -r requirements.txt -e ".[audio,dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (sdnb)" >/dev/null
	touch $@

## demo: run every notebook top to bottom in tiny offline mode; executed notebooks, images and videos land in outputs/
demo: $(STAMP)
	$(TINY) SDNB_OUTPUT_DIR=$(CURDIR)/outputs $(BIN)/python scripts/run_notebooks.py --out $(CURDIR)/outputs

$(COLAB_WIDGETS)/.installed: $(STAMP)
	rm -rf $(COLAB_WIDGETS)
	$(BIN)/python -m pip install -q --no-deps --target $(COLAB_WIDGETS) ipywidgets==7.7.1 ipykernel==6.17.1 ipython_genutils==0.2.0
	touch $@

## test: unit tests, every notebook under nbval, robustness and browser tests (tiny mode, offline); then the
## form and Stop tests again on Colab's ipywidgets 7.7.1 and ipykernel 6
test: $(STAMP) browser-deps $(COLAB_WIDGETS)/.installed
	$(TINY) $(BIN)/python -m pytest
	$(TINY) PYTHONPATH=$(CURDIR)/$(COLAB_WIDGETS) SDNB_EXPECT_IPYWIDGETS=7.7.1 $(BIN)/python -m pytest -q -p no:cacheprovider -o addopts= tests/test_widgets.py tests/test_inpaint.py -k "not inpaint or mask_maker or brush"

## lab: open the notebooks locally in JupyterLab
lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

## bench: speed/memory benchmarks (tiny shapes on CPU; GPU runs: python -m benchmarks.run --device cuda)
bench: $(STAMP)
	$(BIN)/python -m benchmarks.walk --tiny
	$(BIN)/python -m benchmarks.run --device cpu --tiny

## browser-deps: Debian's Chromium for the browser tests (installed when running as root; skipped tests say so otherwise)
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ; } || \
	  echo "note: chromium not installed; browser tests will be skipped"

clean:
	rm -rf $(VENV) outputs
