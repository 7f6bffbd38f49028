# Two commands do everything on a fresh machine: `make train` and `make test`.
# GPU users: make train TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Small torch ops crawl when threads contend; tests pin one thread per process.
TEST_ENV := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 WANDB_MODE=disabled

.PHONY: setup train test test-slow bench docs lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and exactly, so nothing below can resolve a different (CUDA) build.
	$(BIN)/pip install -q $(TORCH_SPEC)
	$(BIN)/pip install -q -e ".[dev,export]"
	touch $(STAMP)

train: setup
	$(BIN)/python -m crnn_lit.train $(ARGS)

test: setup
	$(TEST_ENV) $(BIN)/python -m pytest -q $(ARGS)

test-slow: setup
	$(TEST_ENV) $(BIN)/python -m pytest -q -m slow $(ARGS)

# The scripts of the docs' benchmark table (docs/benchmarks.md; tests/test_docs.py keeps the two lists equal).
# CKPT=<checkpoint> adds the decoding and inference benchmarks (they need a trained model)
bench: setup
	$(BIN)/python bench/train_throughput.py
	$(BIN)/python bench/renderer_throughput.py
	$(BIN)/python bench/model_stats.py
	$(BIN)/python bench/loader_throughput.py
	$(BIN)/python bench/train_speed_options.py
	$(BIN)/python bench/fault_resume.py
	$(BIN)/python bench/scale.py
	$(if $(CKPT),$(BIN)/python bench/decode_speed.py --ckpt $(CKPT))
	$(if $(CKPT),$(BIN)/python bench/inference_speed.py --ckpt $(CKPT))

# The docs site (MkDocs + Material + mkdocstrings) into site/: the generated tables first (docs/gen_tables.py, from
# bench/results/), then a strict build (any warning fails). Nothing is downloaded at build time.
DOCS_STAMP := $(VENV)/.installed-docs
$(DOCS_STAMP): $(STAMP)
	$(BIN)/pip install -q -e ".[docs]"
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	$(BIN)/python docs/gen_tables.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

lint: setup
	$(BIN)/ruff check src tests bench

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache build site src/*.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
