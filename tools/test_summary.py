"""Add up the JUnit XML reports of a `make test` run and print one closing line.

Usage: python tools/test_summary.py REPORT_DIR [FAILED_STEP ...]
       python tools/test_summary.py --count REPORT.xml   (prints how many tests it ran)
Prints e.g. ``summary: 212 passed, 0 failed, 3 skipped`` and exits 1 if any test failed,
any report is missing, or a step that writes no report (the book build) failed.
"""
from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def count(report: Path) -> tuple[int, int, int]:
    """(passed, failed, skipped) in one JUnit XML file; errors count as failures."""
    root = ET.parse(report).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    tests = failed = skipped = 0
    for s in suites:
        tests += int(s.get("tests", 0))
        failed += int(s.get("failures", 0)) + int(s.get("errors", 0))
        skipped += int(s.get("skipped", 0))
    return tests - failed - skipped, failed, skipped


def main(report_dir: str, failed_steps: list[str]) -> int:
    passed = failed = skipped = 0
    for report in sorted(Path(report_dir).glob("*.xml")):
        p, f, s = count(report)
        print(f"  {report.stem:<10} {p} passed, {f} failed, {s} skipped")
        passed, failed, skipped = passed + p, failed + f, skipped + s
    for step in failed_steps:
        print(f"  step failed: {step}")
    failed += len(failed_steps)
    print(f"summary: {passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    if sys.argv[1] == "--count":
        report = Path(sys.argv[2])
        print(sum(count(report)) if report.exists() else 0)
        sys.exit(0)
    sys.exit(main(sys.argv[1], sys.argv[2:]))
