"""The GitHub Actions workflow that tests, builds and publishes the book, checked offline
against the workflow schema that check-jsonschema ships (no network)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, load_tool

WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"
pages = load_tool("pages_address")


def check_jsonschema() -> str:
    exe = Path(sys.executable).parent / "check-jsonschema"
    found = str(exe) if exe.exists() else shutil.which("check-jsonschema")
    assert found, "check-jsonschema is missing: it is in requirements-dev.txt"
    return found


def test_workflow_matches_the_github_workflow_schema():
    proc = subprocess.run([check_jsonschema(), "--builtin-schema", "vendor.github-workflows",
                           str(WORKFLOW)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_schema_check_can_fail(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("name: x\non: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    stepz: []\n")
    proc = subprocess.run([check_jsonschema(), "--builtin-schema", "vendor.github-workflows",
                           str(bad)], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0


def steps(job: dict) -> list[str]:
    return [s.get("run", "") + s.get("uses", "") for s in job["steps"]]


def test_it_tests_builds_and_deploys_only_from_main():
    flow = yaml.safe_load(WORKFLOW.read_text())
    jobs = flow["jobs"]
    assert any("make test" in s for s in steps(jobs["test"]))
    assert any("make book" in s for s in steps(jobs["book"])) and jobs["book"]["needs"] == "test"
    upload = next(s for s in jobs["book"]["steps"]
                  if s.get("uses", "").startswith("actions/upload-pages-artifact"))
    assert upload["with"]["path"] == "_build/html"
    deploy = jobs["deploy"]
    assert deploy["needs"] == "book" and "refs/heads/main" in deploy["if"]
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert any(s.startswith("actions/deploy-pages") for s in steps(deploy))
    assert flow["permissions"] == {"contents": "read"}


def test_the_address_lives_in_config_and_the_readme_says_so():
    url = pages.address()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert url in readme and "html.baseurl" in readme and "_config.yml" in readme


@pytest.mark.parametrize("url, domain", [("https://llmbook.github.io/llmbook/", None),
                                         ("https://book.example.org/", "book.example.org")])
def test_a_custom_domain_gets_a_cname(url, domain):
    assert pages.cname(url) == domain


def test_a_bad_address_is_refused(tmp_path):
    config = tmp_path / "_config.yml"
    config.write_text("html:\n  baseurl: llmbook.github.io\n")
    with pytest.raises(SystemExit, match="must be an https:// address"):
        pages.address(config)
