"""Sphinx extension: the benchmarks page, generated from recorded result files.

    ```{bench-results} benchmarks/cpu.json
    ```

reads a JSON file written by ``python -m llmbook.bench --json`` and renders what it
holds: when and on what it was measured, then one table per list of rows it contains
(``train``, ``generate``, ``batched``, and any other section such as ``speedrun``). Every number on
the page comes from the file; nothing is typed into the page.
"""
from __future__ import annotations

import json
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive
from llmbook_tables import table as _table

# Column order and headings for the sections the bench writes; other sections show
# their scalar fields in file order.
COLUMNS = {
    "train": [("config", "config"), ("impl", "implementation"),
              ("tokens_per_s", "tokens/s"), ("ratio", "ratio (wall)"),
              ("ratio_cpu", "ratio (CPU time)"), ("mem_mib", "memory MiB"), ("mfu", "MFU")],
    "generate": [("config", "config"), ("impl", "implementation"),
                 ("ms_per_token", "ms/token"), ("ratio", "speed (wall)"),
                 ("ratio_cpu", "speed (CPU time)"),
                 ("same_tokens_as_first", "same tokens as first row")],
    "batched": [("batch_size", "batch size"), ("impl", "implementation"),
                ("prompt_len", "padded prompt length"), ("tokens_per_s", "tokens/s"),
                ("ratio_vs_transformers", "vs transformers (wall)"),
                ("ratio_cpu_vs_transformers", "vs transformers (CPU time)"),
                ("same_tokens", "same tokens")],
}
TITLES = {"train": "Training throughput (ratio: relative to the first row of each config)",
          "generate": "Generation, 200 greedy tokens (speed: relative to the first row)",
          "batched": "Batched greedy generation, left-padded prompts (ratio: llmbook / "
                     "transformers at the same batch size)"}
HEADER = [("date", "recorded"), ("model", "model"), ("new_tokens", "new tokens per row"),
          ("device", "device"), ("torch", "torch"),
          ("transformers", "transformers"), ("python", "python"), ("threads", "CPU threads"),
          ("repeats", "interleaved repeats (median)"), ("compile", "torch.compile"),
          ("memory", "memory measured as")]


def fmt(value, key: str = "") -> str:
    if isinstance(value, float) and key.startswith("ratio"):
        return f"{value:.2f}"
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def render(result: dict, name: str) -> list[nodes.Node]:
    out: list[nodes.Node] = [nodes.rubric(text=f"Result file {name}")]
    meta = [[label, fmt(result[key])] for key, label in HEADER if key in result]
    for key, value in (result.get("machine") or {}).items():
        meta.append([f"machine: {key}", fmt(value)])
    for key, value in (result.get("load_average") or {}).items():
        meta.append([f"load average {key} (1 min)", fmt(value)])
    out.append(_table(["", ""], meta, "bench-table"))
    for section, rows in result.items():
        if not (isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows)):
            continue
        cols = COLUMNS.get(section) or [(k, k.replace("_", " ")) for k, v in rows[0].items()
                                        if not isinstance(v, list | dict)]
        out.append(nodes.rubric(text=TITLES.get(section, section.replace("_", " "))))
        out.append(_table([h for _, h in cols],
                          [[fmt(r.get(k), k) for k, _ in cols] for r in rows], "bench-table"))
    return out


class BenchResults(Directive):
    required_arguments = 1

    def run(self):
        env = self.state.document.settings.env
        path = Path(env.doc2path(env.docname)).parent / self.arguments[0]
        env.note_dependency(str(path))
        try:
            result = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise self.error(f"cannot read benchmark result {path}: {err}") from err
        return render(result, self.arguments[0])


def setup(app):
    app.add_directive("bench-results", BenchResults)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
