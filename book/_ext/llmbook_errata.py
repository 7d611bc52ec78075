"""Sphinx extension: the errata appendix, generated at build time.

Every ``{admonition}`` whose title starts with "Erratum" (e.g. "Erratum E002-13 and
E001-11") gets an anchor per id it names (``erratum-e002-13``). The directive

    ```{errata-table} errata.yml
    ```

reads the errata data (path relative to the page) and, once every page has been read,
writes the appendix: counts by severity and, per article, a table of id, severity, claim,
correction and where the book demonstrates it. An erratum is *demonstrated* when a page
has an erratum admonition naming it (the cell next to it runs the experiment),
*discussed in prose* when the data names a page and a reason, and *not yet
demonstrated* otherwise. Nothing is typed by hand: the status follows the notebooks.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

import yaml
from docutils import nodes
from docutils.parsers.rst import Directive, directives
from llmbook_tables import table

ERRATUM_ID = re.compile(r"E\d{3}-\d{2}")
SEVERITY = {"H": "high", "M": "medium", "L": "low"}
STATUSES = ("demonstrated", "prose", "open")
STATUS_TEXT = {"demonstrated": "demonstrated by code", "prose": "discussed in prose",
               "open": "not yet demonstrated"}


def anchor(erratum_id: str) -> str:
    return "erratum-" + erratum_id.lower()


class errata_placeholder(nodes.General, nodes.Element):
    """Replaced by the appendix once all pages are read."""


class ErrataTable(Directive):
    required_arguments = 1
    has_content = False
    option_spec: ClassVar[dict] = {"class": directives.class_option}

    def run(self):
        env = self.state.document.settings.env
        src = Path(env.doc2path(env.docname)).parent / self.arguments[0]
        env.note_dependency(str(src))
        node = errata_placeholder()
        node["data"] = str(src)
        return [node]


def load_errata(path: str | Path) -> dict:
    """The errata data: ``{"articles": {...}, "errata": [...]}``, checked."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    seen = set()
    for e in data["errata"]:
        missing = {"id", "article", "severity", "claim", "correction"} - set(e)
        if missing:
            raise ValueError(f"{path}: erratum {e.get('id', '?')} lacks {sorted(missing)}")
        if not ERRATUM_ID.fullmatch(e["id"]) or e["id"] in seen:
            raise ValueError(f"{path}: bad or repeated id {e['id']!r}")
        if e["severity"] not in SEVERITY:
            raise ValueError(f"{path}: {e['id']} has severity {e['severity']!r}; use H, M or L")
        if "prose" in e and not {"page", "reason"} <= set(e["prose"]):
            raise ValueError(f"{path}: {e['id']}: prose needs a page and a reason")
        seen.add(e["id"])
    return data


def collect_sites(app, doctree) -> None:
    """Anchor every erratum admonition and remember where each id is demonstrated."""
    env = app.env
    sites = env.__dict__.setdefault("llmbook_errata_sites", {})
    for adm in doctree.findall(nodes.admonition):
        titles = [c for c in adm.children if isinstance(c, nodes.title)]
        if not titles or not titles[0].astext().strip().startswith("Erratum"):
            continue
        for eid in ERRATUM_ID.findall(titles[0].astext()):
            name = anchor(eid)
            if name in adm["ids"] or any(name in n["ids"] for n in doctree.findall(nodes.Element)):
                continue  # one anchor per id and page: the first demonstration
            adm["ids"].append(name)
            sites.setdefault(eid, []).append((env.docname, name))


def purge(app, env, docname) -> None:
    sites = getattr(env, "llmbook_errata_sites", {})
    for eid in list(sites):
        sites[eid] = [s for s in sites[eid] if s[0] != docname]


def merge(app, env, docnames, other) -> None:
    sites = env.__dict__.setdefault("llmbook_errata_sites", {})
    for eid, found in getattr(other, "llmbook_errata_sites", {}).items():
        sites.setdefault(eid, []).extend(s for s in found if s[0] in docnames)


def always_rebuild_appendix(app, env, added, changed, removed):
    """The appendix depends on every page: re-read it whenever anything changed."""
    if not (added or changed or removed):
        return []
    return [d for d, deps in env.dependencies.items()
            if any(str(x).endswith("errata.yml") for x in deps)]


def status_of(e: dict, sites: dict) -> str:
    if sites.get(e["id"]):
        return "demonstrated"
    return "prose" if "prose" in e else "open"


def _link(app, fromdoc: str, todoc: str, fragment: str | None, text: str) -> nodes.Node:
    uri = app.builder.get_relative_uri(fromdoc, todoc) + (f"#{fragment}" if fragment else "")
    para = nodes.inline()
    para += nodes.reference("", text, refuri=uri, internal=True)
    return para


def _title(app, docname: str) -> str:
    title = app.env.titles.get(docname)
    return title.astext() if title is not None else docname


def _table(headers, rows, widths) -> nodes.table:
    return table(headers, rows, "errata-table", widths)


def fill_appendix(app, doctree, fromdoc) -> None:
    sites = getattr(app.env, "llmbook_errata_sites", {})
    for node in list(doctree.findall(errata_placeholder)):
        data = load_errata(node["data"])
        errata = data["errata"]
        out: list[nodes.Node] = []
        counts = {s: {k: 0 for k in STATUSES} for s in SEVERITY}
        for e in errata:
            counts[e["severity"]][status_of(e, sites)] += 1
        summary = [[f"{SEVERITY[s]} ({s})"] + [str(counts[s][k]) for k in STATUSES]
                   + [str(sum(counts[s].values()))] for s in SEVERITY]
        summary.append(["all"] + [str(sum(counts[s][k] for s in SEVERITY)) for k in STATUSES]
                       + [str(len(errata))])
        out.append(_table(["severity"] + [STATUS_TEXT[k] for k in STATUSES] + ["total"],
                          summary, [2, 2, 2, 2, 1]))
        for code, label in data.get("articles", {}).items():
            out.append(nodes.rubric(text=f"Article {code}: {label}"))
            rows = []
            for e in (x for x in errata if x["article"] == code):
                status = status_of(e, sites)
                where = nodes.paragraph()
                if status == "demonstrated":
                    for i, (doc, name) in enumerate(sites[e["id"]]):
                        if i:
                            where += nodes.Text("; ")
                        where += _link(app, fromdoc, doc, name, _title(app, doc))
                elif status == "prose":
                    where += nodes.Text("discussed in prose: ")
                    where += _link(app, fromdoc, e["prose"]["page"], None,
                                   _title(app, e["prose"]["page"]))
                    where += nodes.Text(f" ({e['prose']['reason']})")
                else:
                    where += nodes.Text("not yet demonstrated"
                                        + (f" (planned: {e['planned']})" if e.get("planned") else ""))
                idcell = nodes.paragraph(text=e["id"], ids=[f"errata-row-{e['id'].lower()}"])
                rows.append([idcell, e["severity"], e["claim"], e["correction"], where])
            out.append(_table(["id", "sev.", "what the article claims", "correction",
                               "where this book shows it"], rows, [2, 1, 5, 6, 4]))
        node.replace_self(out)


def setup(app):
    app.add_node(errata_placeholder)
    app.add_directive("errata-table", ErrataTable)
    app.connect("doctree-read", collect_sites)
    app.connect("env-purge-doc", purge)
    app.connect("env-merge-info", merge)
    app.connect("env-get-outdated", always_rebuild_appendix)
    app.connect("doctree-resolved", fill_appendix)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
