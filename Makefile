# The two commands of the README:
#   make book   install what is needed, fetch the data, build the HTML book into _build/html
#   make test   the same install and data, then every test at LLMBOOK_SCALE=ci
# Also: make student (student notebooks into student/), make sync (setup cells), make clean.
# Everything Python goes into a virtual environment in .venv (override with VENV=...).

SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
# PEP 517 builds for sdists (seqeval's legacy setup_requires fetches a broken setuptools-scm).
PIP := PIP_USE_PEP517=1 $(PY) -m pip --disable-pip-version-check -q
# The tested CPU build of torch; Colab keeps its own (requirements.txt has lower bounds only).
CONSTRAINTS ?= constraints.txt
# A kernel occasionally dies and jupyter-book then hangs: every build runs under `timeout`.
BUILD_TIMEOUT ?= 5400
OFFLINE := _build/offline/_offline/installed.json

.PHONY: book test install data assets sync student clean

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	bash tools/system-deps.sh
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -r requirements-dev.txt -c $(CONSTRAINTS) \
		2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
	$(PIP) install --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

install: $(VENV)/.installed

# MathJax, require.js and the widget manager, from npm, so the HTML needs no CDN.
$(OFFLINE): tools/offline_assets.py
	$(PY) tools/offline_assets.py _build/offline

assets: install $(OFFLINE)

data: install
	$(PY) -m llmbook.data fetch

# The published book, at the scale of this machine (cpu, or gpu where CUDA is present).
# Rarely a kernel and jupyter-book wait on each other forever; the cell timeout in
# _config.yml ends that, and one retry with --all re-executes only the notebooks missing
# from the execution cache (the others are read back from it).
book: assets data
	timeout $(BUILD_TIMEOUT) $(VENV)/bin/jupyter-book build . -W -n --keep-going || { \
	  echo "Build failed; retrying once (notebooks that ran come from the cache)"; \
	  timeout $(BUILD_TIMEOUT) $(VENV)/bin/jupyter-book build . -W -n --keep-going --all; }
	@echo "Book built: open _build/html/index.html"

# Unit tests, nbmake over every notebook, the ci-scale book and its HTML checks.
test: assets data
	VENV=$(VENV) bash tools/test_all.sh

sync: install
	$(PY) tools/sync_notebooks.py

student: install
	$(PY) tools/make_student.py chapters student

clean:
	rm -rf _build _ci student
