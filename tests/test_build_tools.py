"""The build's own machinery: executing notebooks one process each with a retry, the
checks on executed outputs, the build stamp, folded setup cells, alt text, glue."""
from __future__ import annotations

import os
from pathlib import Path

import llmbook
import nbformat
import pytest
from conftest import load_tool
from llmbook import book
from llmbook.setup import parse_banner

checks = load_tool("executed_checks")
finish = load_tool("finish_notebooks")
execute = load_tool("execute_book")
v4 = nbformat.v4


def stream(text, name="stdout"):
    return v4.new_output("stream", name=name, text=text)


def code(source, *outputs, **timing):
    cell = v4.new_code_cell(source)
    cell.outputs = list(outputs)
    cell.execution_count = 1
    if timing:
        cell.metadata["execution"] = timing
    return cell


# ------------------------------------------------------------------ executed checks
def test_a_repeated_last_line_is_found_and_distinct_lines_are_not():
    nb = v4.new_notebook(cells=[
        code("...", stream("step 1\ncausal=False: loss 2.1\n"), stream("causal=False: loss 2.1\n")),
        code("...", stream("a\n"), stream("b\n"), stream("a\n", name="stderr")),
    ])
    found = checks.problems(nb)
    assert found == ["cell 0: line printed twice: 'causal=False: loss 2.1'"]


@pytest.mark.parametrize("text", [
    "Loading weights: 100%|██████████| 148/148 [00:00<00:00, 900.1it/s]\n",
    "training:  40%|████      | 8/20\n",
    "epoch 1\rEpoch 2\r",
    "Loading weights\n",
])
def test_progress_bar_debris_is_found(text):
    assert checks.problems(v4.new_notebook(cells=[code("x", stream(text, "stderr"))]))


def test_ordinary_outputs_are_clean():
    nb = v4.new_notebook(cells=[code("x", stream("loss 2.1 at 50% of the data | done\n"),
                                     v4.new_output("execute_result", data={"text/plain": "3"}))])
    assert checks.problems(nb) == []


def test_a_glued_value_echoed_as_the_cell_result_is_found():
    glued = v4.new_output("display_data", data={
        "application/papermill.record/text/plain": "'cpu'", "text/plain": "scale = 'cpu'"})
    echo = v4.new_output("execute_result", data={"text/plain": "'cpu'"})
    other = v4.new_output("execute_result", data={"text/plain": "'gpu'"})
    nb = v4.new_notebook(cells=[code('glue("scale", env.scale)', glued, echo),
                                code('_ = glue("scale", env.scale)\n"gpu"', glued, other)])
    assert checks.problems(nb) == ["cell 0: glued value shown again as the cell's result: "
                                   "'cpu' (assign the glue call: _ = glue(...))"]


def test_a_progress_widget_in_the_saved_state_is_found():
    nb = v4.new_notebook()
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {
        "a": {"model_name": "FloatProgressModel"}, "b": {"model_name": "FloatSliderModel"}}}}
    assert checks.problems(nb) == ["a progress-bar widget (FloatProgressModel) in the saved "
                                   "widget state"]


def test_start_switches_off_hugging_face_progress_bars(monkeypatch, capsys):
    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)
    llmbook.start()
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"
    from transformers.utils import logging as hf_logging  # imported after: stays off

    assert not hf_logging.is_progress_bar_enabled()


# ------------------------------------------------------------------ stamp, fold, alt
def test_the_banner_is_parsed_back(capsys):
    env = llmbook.start()
    fields = parse_banner(capsys.readouterr().out)
    assert fields["scale"] == env.scale and fields["device"] == env.device.type
    assert fields["torch"] == llmbook.setup.torch.__version__
    assert parse_banner("no banner here") is None


def executed_notebook():
    banner = ("llmbook 0.1.0 · torch 2.13.0+cpu · device cpu · fp32 · scale ci "
              "(set LLMBOOK_SCALE=ci|cpu|gpu) · seed 0\n")
    t = "2026-12-01T10:00:{:02d}.000000Z".format
    return v4.new_notebook(cells=[
        v4.new_markdown_cell("# 9.9 A title"),
        code("import llmbook\nenv = llmbook.start()", stream(banner),
             **{"iopub.execute_input": t(0), "shell.execute_reply": t(3)}),
        v4.new_markdown_cell("## Loss curves"),
        code('ax.set(title=f"Loss at {env.scale} scale", xlabel="step")\nplt.show()',
             v4.new_output("display_data", data={"image/png": "iVBOR"}),
             **{"iopub.execute_input": t(3), "shell.execute_reply": t(41)}),
        code("plt.plot([1, 2]); plt.show()",
             v4.new_output("display_data", data={"image/png": "iVBOR"})),
    ])


def test_stamp_says_scale_device_torch_and_time():
    nb = executed_notebook()
    assert finish.execution_seconds(nb) == 41
    assert finish.add_stamp(nb) and finish.add_stamp(nb)      # refreshing keeps one stamp
    stamps = [c for c in nb.cells if finish.STAMP_CLASS in c.source]
    assert len(stamps) == 1 and nb.cells[1] is stamps[0]
    text = stamps[0].source
    assert "scale **ci**" in text and "**cpu**" in text and "torch 2.13.0+cpu" in text
    assert "**41 s**" in text


def test_no_stamp_without_a_banner():
    nb = executed_notebook()
    nb.cells[1].outputs = []
    assert not finish.add_stamp(nb)


def test_setup_cell_is_folded_and_figures_get_alt_text():
    nb = executed_notebook()
    finish.fold_setup_cell(nb)
    assert nb.cells[1].metadata["tags"] == ["hide-input"]
    assert finish.add_alt_text(nb) == 2
    assert nb.cells[3].metadata["mystnb"]["image"]["alt"] == "Figure: Loss at … scale"
    assert nb.cells[4].metadata["mystnb"]["image"]["alt"] == "Figure of the section “Loss curves”"


# ------------------------------------------------------------------ execution, retry
def kernel_notebook(*sources):
    nb = v4.new_notebook(cells=[v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return nb


def test_one_notebook_executes_in_its_own_process(tmp_path):
    path = tmp_path / "ok.ipynb"
    nbformat.write(kernel_notebook("print('hello')"), path)
    assert execute.run_in_own_process(path, 60, 120) == execute.OK
    out = nbformat.read(path, as_version=4).cells[0].outputs
    assert out[0]["text"] == "hello\n"


def test_the_kernel_is_shut_down_before_execute_one_returns(tmp_path):
    """nbclient leaves a kernel it was handed running; execute_one shuts it down, so no
    kernel outlives its notebook (an orphan finds its parent gone and its sockets deleted)."""
    path = tmp_path / "pid.ipynb"
    nbformat.write(kernel_notebook("import os\nprint(os.getpid())"), path)
    assert execute.execute_one(path, cell_timeout=60) == execute.OK
    pid = int(nbformat.read(path, as_version=4).cells[0].outputs[0]["text"])
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        status = ""                                     # gone, as it should be
    assert "State:\tZ" in status or not status, status[:200]


def test_a_cell_error_is_not_a_kernel_failure(tmp_path):
    path = tmp_path / "bad.ipynb"
    nbformat.write(kernel_notebook("1 / 0"), path)
    assert execute.run_in_own_process(path, 60, 120) == execute.CELL_ERROR


def test_a_kernel_idle_in_a_running_cell_is_stopped(tmp_path, capsys):
    """A kernel that waits without working (a lost message, or here a sleep) is killed."""
    path = tmp_path / "idle.ipynb"
    nbformat.write(kernel_notebook("import time\ntime.sleep(600)"), path)
    assert execute.execute_one(path, cell_timeout=300, idle_limit=12) == execute.KERNEL_FAILURE
    assert "lost a message" in capsys.readouterr().err


def test_a_dying_kernel_is_retried_in_a_fresh_process(tmp_path, monkeypatch, capsys):
    """The first kernel dies mid-notebook; the retry, in a new process, succeeds."""
    src = tmp_path / "src"
    (src / "chapters").mkdir(parents=True)
    marker = tmp_path / "died-once"
    nb = kernel_notebook(f"import os, pathlib\nm = pathlib.Path({str(marker)!r})\n"
                         "if not m.exists():\n    m.touch()\n    os._exit(1)",
                         "print('survived')")
    nbformat.write(nb, src / "chapters" / "x.ipynb")
    dest = tmp_path / "dest"
    (dest / "chapters").mkdir(parents=True)
    nbformat.write(nb, dest / "chapters" / "x.ipynb")
    monkeypatch.setattr(execute, "ROOT", src)
    failed = execute.execute_all(dest, tmp_path / "cache", 60, 120, retries=1)
    log = capsys.readouterr().out
    assert failed == [] and "retrying" in log and marker.exists()
    done = nbformat.read(dest / "chapters" / "x.ipynb", as_version=4)
    assert done.cells[1].outputs[0]["text"] == "survived\n"
    # unchanged source: the cached copy is reused, nothing runs again
    assert execute.execute_all(dest, tmp_path / "cache", 60, 120, retries=0) == []
    assert "reused" in capsys.readouterr().out


# ------------------------------------------------------------------ glue
def test_glue_outside_a_notebook_shows_nothing():
    assert book.glue_bundle("x", 1.5) is None


def test_glue_output_is_hidden_in_the_book_and_shown_in_a_notebook(monkeypatch):
    from myst_nb.ext.glue import extract_glue_data_cell

    monkeypatch.setattr("IPython.get_ipython", lambda: object())
    data, metadata = book.glue_bundle("alpha_N", 0.0712)
    assert data["text/plain"] == "alpha_N = 0.0712"           # what Jupyter / Colab show
    cell = code("glue('alpha_N', a)", v4.new_output("display_data", data=data,
                                                     metadata=metadata))
    (name, output), = extract_glue_data_cell(cell)
    assert name == "alpha_N" and output["data"]["text/plain"] == "0.0712"  # what's pasted
    assert cell.outputs == [], "myst-nb must not show the glue output in the HTML"
    shown, _ = book.glue_bundle("alpha_N", 0.0712, display=True)
    assert shown == {"text/plain": "0.0712"}


def test_tqdm_disable_also_silences_notebook_bars(monkeypatch, capsys):
    from tqdm.notebook import tqdm_notebook

    monkeypatch.setattr(tqdm_notebook, "__init__", tqdm_notebook.__init__)   # restored after
    monkeypatch.setenv("TQDM_DISABLE", "1")
    llmbook.start(quiet=True)
    assert tqdm_notebook(total=3).disable


def test_failed_solutions_names_a_visible_check_that_did_not_pass():
    v4 = nbformat.v4

    def cell(source, text, *tags):
        c = v4.new_code_cell(source)
        c.outputs = [v4.new_output("stream", name="stdout", text=text)]
        c.metadata["tags"] = list(tags)
        return c

    nb = v4.new_notebook(cells=[
        cell('check("1.2.3", f);', "✓ Exercise 1.2.3: correct.\n"),
        cell('if check("1.2.4", g):\n    print(g(1))', "✗ Exercise 1.2.4: not yet. no\n"),
        cell('assert not check("1.2.4", h)', "✗ Exercise 1.2.4: not yet. no\n",
             "remove-cell"),
    ])
    found = checks.failed_solutions(nb)
    assert len(found) == 1 and "cell 1" in found[0] and "1.2.4" in found[0], found


def test_the_cache_key_changes_with_notebook_scale_and_package(tmp_path, monkeypatch):
    nb, pkg = tmp_path / "a.ipynb", tmp_path / "pkg"
    nb.write_text("{}")
    (pkg / "sub").mkdir(parents=True)
    (pkg / "sub" / "m.py").write_text("x = 1\n")
    monkeypatch.setenv("LLMBOOK_SCALE", "cpu")
    first = execute.source_key(nb, pkg)
    assert execute.source_key(nb, pkg) == first
    (pkg / "sub" / "m.py").write_text("x = 2\n")
    assert execute.source_key(nb, pkg) != first
    package_changed = execute.source_key(nb, pkg)
    monkeypatch.setenv("LLMBOOK_SCALE", "ci")
    assert execute.source_key(nb, pkg) != package_changed
    nb.write_text('{"a": 1}')
    assert len({first, package_changed, execute.source_key(nb, pkg)}) == 3


def test_notebooks_run_side_by_side_with_their_share_of_the_cores(tmp_path, monkeypatch,
                                                                   capsys):
    src, dest = tmp_path / "src", tmp_path / "dest"
    for root in (src, dest):
        (root / "chapters").mkdir(parents=True)
    for name in ("a", "b"):
        nb = kernel_notebook("import os\nprint(os.environ['OMP_NUM_THREADS'])")
        for root in (src, dest):
            nbformat.write(nb, root / "chapters" / f"{name}.ipynb")
    monkeypatch.setattr(execute, "ROOT", src)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(execute.os, "cpu_count", lambda: 4)
    assert execute.execute_all(dest, tmp_path / "cache", 60, 120, retries=0, jobs=2) == []
    for name in ("a", "b"):
        done = nbformat.read(dest / "chapters" / f"{name}.ipynb", as_version=4)
        assert done.cells[0].outputs[0]["text"] == "2\n"
    assert capsys.readouterr().out.count(": ok in") == 2
    with pytest.raises(ValueError, match="jobs must be at least 1, got 0"):
        execute.execute_all(dest, tmp_path / "cache", 60, 120, retries=0, jobs=0)
