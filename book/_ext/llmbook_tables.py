"""A docutils table from headers and rows, shared by the book's Sphinx extensions."""
from __future__ import annotations

from docutils import nodes


def table(headers: list[str], rows: list[list[nodes.Node | str]], css_class: str,
          widths: list[int] | None = None) -> nodes.table:
    """A table with one header row; a cell is a string or a ready docutils node."""
    t = nodes.table(classes=[css_class])
    group = nodes.tgroup(cols=len(headers))
    t += group
    for w in widths or [1] * len(headers):
        group += nodes.colspec(colwidth=w)
    head, body = nodes.thead(), nodes.tbody()
    group += head
    group += body
    row = nodes.row()
    for h in headers:
        row += nodes.entry("", nodes.paragraph(text=h))
    head += row
    for cells in rows:
        row = nodes.row()
        for cell in cells:
            row += nodes.entry("", cell if isinstance(cell, nodes.Node)
                               else nodes.paragraph(text=cell))
        body += row
    return t
