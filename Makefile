# The two commands of the README:
#   make book   install what is needed, fetch the data, build the HTML book into _build/html
#   make test   the same install and data, then every test at LLMBOOK_SCALE=ci
# Also: make student (student notebooks into student/), make sync (setup cells), make bench
# (re-record the benchmarks page), make clean.
# Everything Python goes into a virtual environment in .venv (override with VENV=...).

SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
# PEP 517 builds for sdists (seqeval's legacy setup_requires fetches a broken setuptools-scm).
PIP := PIP_USE_PEP517=1 $(PY) -m pip --disable-pip-version-check -q
# The tested CPU build of torch; Colab keeps its own (requirements.txt has lower bounds only).
CONSTRAINTS ?= constraints.txt
# Every build runs under `timeout`, so nothing can hang forever.
BUILD_TIMEOUT ?= 5400

.PHONY: book test install data assets sync student clean bench

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	bash tools/system-deps.sh
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -r requirements-dev.txt -c $(CONSTRAINTS) \
		2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
	$(PIP) install --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

install: $(VENV)/.installed

# MathJax, require.js and the widget manager, from npm, so the HTML needs no CDN. The
# script runs every time: it fetches nothing when its stamp matches, but always rewrites
# the small loader script it generates, so a copied or stale _build/ cannot keep an old one.
assets: install
	$(PY) tools/offline_assets.py _build/offline

data: install
	$(PY) -m llmbook.data fetch

# The published book, at the scale of this machine (cpu, or gpu where CUDA is present).
# tools/execute_book.py copies the sources into $(EXECUTED), executes each notebook in a
# process of its own (a kernel that dies or hangs is retried once in a fresh one; an
# unchanged notebook is read back from _build/executed-cache), stamps and checks the
# executed copies; jupyter-book then builds that copy, execution off, into _build/html.
# JOBS notebooks run at once (make book JOBS=2), the cores shared out between them.
EXECUTED ?= _build/book
JOBS ?= 1
book: assets data
	$(PY) tools/execute_book.py $(EXECUTED) --offline _build/offline --jobs $(JOBS)
	timeout $(BUILD_TIMEOUT) $(VENV)/bin/jupyter-book build $(EXECUTED) -W -n --keep-going \
	  --path-output .
	@echo "Book built: open _build/html/index.html"

# Unit tests, nbmake over every notebook, the ci-scale book and its HTML checks.
test: assets data
	VENV=$(VENV) bash tools/test_all.sh

# Speed of the package against transformers (same-run ratios), recorded for the benchmarks
# page: replaces book/benchmarks/cpu.json and cpu-batched.json (atomically) with fresh runs.
bench: install
	$(PY) -m llmbook.bench --json book/benchmarks/cpu.json
	$(PY) -m llmbook.bench --batched --json book/benchmarks/cpu-batched.json

sync: install
	$(PY) tools/sync_notebooks.py

student: install
	$(PY) tools/make_student.py chapters student

clean:
	rm -rf _build _ci student
