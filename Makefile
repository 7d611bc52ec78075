# The two commands of the README:
#   make book   install what is needed, fetch the data, build the HTML book into _build/html
#   make test   install what is needed, fetch the data, run every test at LLMBOOK_SCALE=ci
# Everything goes into a virtual environment in .venv (override with VENV=...).

SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
# The tested CPU build of torch; Colab keeps its own (requirements.txt has a lower bound only).
CONSTRAINTS ?= constraints.txt
BUILD_TIMEOUT ?= 5400

.PHONY: book test install data html-ci clean student

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -r requirements-dev.txt -c $(CONSTRAINTS) 2> >(grep -v "is ignored: it is neither" >&2)
	$(PIP) install --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	bash tools/system-deps.sh
	touch $@

install: $(VENV)/.installed

data: install
	$(PY) -m llmbook.data fetch

# The published book, at the scale of this machine (cpu, or gpu where CUDA is present).
book: data
	$(PY) -m llmbook.assets install _build/assets
	timeout $(BUILD_TIMEOUT) $(VENV)/bin/jupyter-book build . -W -n --keep-going
	@echo "Book built: open _build/html/index.html"

# The same book built at ci scale into _build/ci, for the HTML checks of the test suite.
html-ci: data
	$(PY) -m llmbook.assets install _build/assets
	LLMBOOK_SCALE=ci timeout 2400 $(VENV)/bin/jupyter-book build . -W -n --keep-going \
		--path-output _build/ci

test: html-ci
	LLMBOOK_SCALE=ci LLMBOOK_HTML_DIR=_build/ci/_build/html $(VENV)/bin/pytest \
		--nbmake --nbmake-timeout=300 tests chapters

student: install
	$(PY) -m llmbook.student chapters student

clean:
	rm -rf _build student
