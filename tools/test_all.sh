#!/usr/bin/env bash
# Every test of the book, at LLMBOOK_SCALE=ci (`make test` calls this after installing).
#   1. unit and convention tests      pytest tests (all but the built-HTML checks)
#   2. notebooks                      pytest --nbmake over every notebook, run in a copy of
#                                     the book in _ci/ and saved there with their outputs
#                                     (not under _build/: nbmake skips any path through it)
#      executed-notebook checks       tools/finish_notebooks.py stamps the executed copies
#                                     (as make book does); pytest tests/test_executed.py
#                                     checks them (no duplicated output, no progress bars)
#   3. the book                       jupyter-book build -W of that copy, execution off,
#                                     so the HTML shows exactly what step 2 executed
#   4. built-HTML checks              pytest tests/test_book.py on _ci/_build/html
#   5. in a browser                   pytest tests/test_browser.py: headless Chromium opens
#                                     every page from disk, network cut (screenshots and
#                                     the report in _build/browser/)
#   6. student versions               tools/make_student.py, then python -m llmbook.grade
#                                     executes them; tests/test_student_versions.py reads
#                                     its table (all "not attempted", every notebook ran)
# Every step runs even when an earlier one failed; the last line adds them all up.
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
CI_DIR=${CI_DIR:-_ci}
REPORTS=_build/test-reports
NB_TIMEOUT=${NB_TIMEOUT:-300}
BUILD_TIMEOUT=${BUILD_TIMEOUT:-900}
# TQDM_DISABLE: no progress bars in executed notebooks (as in make book)
export LLMBOOK_SCALE=ci PYTHONHASHSEED=0 TQDM_DISABLE=1
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

run_pytest unit tests --ignore=tests/test_book.py --ignore=tests/test_executed.py \
  --ignore=tests/test_browser.py --ignore=tests/test_student_versions.py

"$VENV/bin/python" tools/prepare_ci_book.py "$CI_DIR" _build/offline || failed+=("prepare $CI_DIR")
run_pytest notebooks --nbmake --overwrite --nbmake-timeout="$NB_TIMEOUT" --durations=0 \
  "$CI_DIR/chapters"
n_notebooks=$(find "$CI_DIR/chapters" -name "*.ipynb" -not -path "*/.ipynb_checkpoints/*" | wc -l)
n_run=$("$VENV/bin/python" tools/test_summary.py --count "$REPORTS/notebooks.xml")
[ "$n_run" = "$n_notebooks" ] || failed+=("nbmake ran $n_run of $n_notebooks notebooks")
"$VENV/bin/python" tools/finish_notebooks.py "$CI_DIR/chapters" || failed+=("finish $CI_DIR")
LLMBOOK_EXECUTED_DIR="$CI_DIR/chapters" run_pytest executed tests/test_executed.py

echo "=== book: jupyter-book build $CI_DIR (-W, execution off)"
timeout "$BUILD_TIMEOUT" "$VENV/bin/jupyter-book" build "$CI_DIR" -W -n --keep-going \
  > "$REPORTS/book-build.log" 2>&1 || { failed+=("jupyter-book build (see $REPORTS/book-build.log)"); \
  grep -E "WARNING|ERROR|Error" "$REPORTS/book-build.log" | tail -40; }

LLMBOOK_HTML_DIR="$CI_DIR/_build/html" run_pytest html tests/test_book.py tests/test_errata.py \
  tests/test_benchmarks_page.py
LLMBOOK_HTML_DIR="$CI_DIR/_build/html" run_pytest browser tests/test_browser.py

echo "=== student versions: make_student.py, then python -m llmbook.grade"
"$VENV/bin/python" tools/make_student.py chapters "$CI_DIR/student" > /dev/null \
  && "$VENV/bin/python" -m llmbook.grade "$CI_DIR/student" --out "$REPORTS/student" \
       --cell-timeout "$NB_TIMEOUT" --memory-gb 6 > /dev/null \
  || failed+=("student versions (make_student.py or llmbook.grade)")
LLMBOOK_STUDENT_GRADES="$REPORTS/student/grades.csv" run_pytest student tests/test_student_versions.py

"$VENV/bin/python" tools/test_summary.py "$REPORTS" "${failed[@]}"
