"""Four submissions of notebook 2.1 for the grader, and its table (shown in
book/for_instructors.md): a solved one (the book's notebook), an unsolved one (the
student version), a broken one and one that loops forever.

Usage: python tools/grader_demo.py OUT_DIR [--cell-timeout S]
       (writes OUT_DIR/submissions/*.ipynb, then runs python -m llmbook.grade on them)
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_student import student_notebook

NOTEBOOK = ROOT / "chapters" / "02_attention" / "01_scaled_dot_product.ipynb"
# (exercise id, the student's answer cell) for the broken and the looping submission
BROKEN = {
    "2.1.1": "def attention_weights(q, k):\n    return (q @ k.transpose(-2, -1)).softmax(-1)",
    "2.1.2": "def score_variance(d_k, sigma):\n    return d_k * sigma ** 4 / (d_k - d_k)",
    "2.1.3": "most_even = int(entropy(weights_ex).argmax(dim=2))",
}
LOOPING = {
    "2.1.1": "def attention_weights(q, k):\n"
             "    return (q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5).softmax(-1)",
    "2.1.2": "def score_variance(d_k, sigma):\n    while True:\n        pass",
}


def answered(nb, answers: dict[str, str]):
    """``nb`` with the answer cell above each ``check("id", ...)`` replaced."""
    nb = nbformat.from_dict(nb)
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    for before, i in zip(code, code[1:]):
        for ex_id, source in answers.items():
            if f'check("{ex_id}"' in nb.cells[i].source:
                nb.cells[before].source = source
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--cell-timeout", default="60")
    args = parser.parse_args(argv)
    folder = args.out / "submissions"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    source = nbformat.read(NOTEBOOK, as_version=4)
    student = student_notebook(source)
    for name, nb in {"ada_solved": source, "ben_unsolved": student,
                     "cai_broken": answered(student, BROKEN),
                     "dan_looping": answered(student, LOOPING)}.items():
        nbformat.write(nb, folder / f"{name}.ipynb")
    cmd = [sys.executable, "-m", "llmbook.grade", str(folder), "--out", str(args.out),
           "--cell-timeout", args.cell_timeout]
    return subprocess.run(cmd, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
