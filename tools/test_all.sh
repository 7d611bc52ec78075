#!/usr/bin/env bash
# Every test of the book, at LLMBOOK_SCALE=ci (`make test` calls this after installing).
#   1. unit and convention tests      pytest tests (all but the built-HTML checks)
#   2. notebooks                      pytest --nbmake over every notebook, run in a copy of
#                                     the book in _ci/ and saved there with their outputs
#                                     (not under _build/: nbmake skips any path through it)
#   3. the book                       jupyter-book build -W of that copy, execution off,
#                                     so the HTML shows exactly what step 2 executed
#   4. built-HTML checks              pytest tests/test_book.py on _ci/_build/html
# Every step runs even when an earlier one failed; the last line adds them all up.
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
CI_DIR=${CI_DIR:-_ci}
REPORTS=_build/test-reports
NB_TIMEOUT=${NB_TIMEOUT:-300}
BUILD_TIMEOUT=${BUILD_TIMEOUT:-900}
export LLMBOOK_SCALE=ci PYTHONHASHSEED=0
failed=()
rm -rf "$REPORTS" && mkdir -p "$REPORTS"

# pytest exits 0 (passed), 1 (some failed: counted from its report) or 5 (nothing to run);
# anything else (interrupted, crashed, timed out) is a failed step.
run_pytest() {
  local name=$1; shift
  echo "=== $name: pytest $*"
  timeout 3000 "$VENV/bin/pytest" -p no:cacheprovider --junitxml="$REPORTS/$name.xml" "$@"
  local rc=$?
  case $rc in 0|1|5) ;; *) failed+=("$name (pytest exit $rc)") ;; esac
}

run_pytest unit tests --ignore=tests/test_book.py

"$VENV/bin/python" tools/prepare_ci_book.py "$CI_DIR" _build/offline || failed+=("prepare $CI_DIR")
run_pytest notebooks --nbmake --overwrite --nbmake-timeout="$NB_TIMEOUT" --durations=0 \
  "$CI_DIR/chapters"
n_notebooks=$(find "$CI_DIR/chapters" -name "*.ipynb" -not -path "*/.ipynb_checkpoints/*" | wc -l)
n_run=$("$VENV/bin/python" tools/test_summary.py --count "$REPORTS/notebooks.xml")
[ "$n_run" = "$n_notebooks" ] || failed+=("nbmake ran $n_run of $n_notebooks notebooks")

echo "=== book: jupyter-book build $CI_DIR (-W, execution off)"
timeout "$BUILD_TIMEOUT" "$VENV/bin/jupyter-book" build "$CI_DIR" -W -n --keep-going \
  > "$REPORTS/book-build.log" 2>&1 || { failed+=("jupyter-book build (see $REPORTS/book-build.log)"); \
  grep -E "WARNING|ERROR|Error" "$REPORTS/book-build.log" | tail -40; }

LLMBOOK_HTML_DIR="$CI_DIR/_build/html" run_pytest html tests/test_book.py tests/test_errata.py \
  tests/test_benchmarks_page.py

"$VENV/bin/python" tools/test_summary.py "$REPORTS" "${failed[@]}"
