"""One self-contained HTML page that gathers a run's figures, tables and file links."""

from __future__ import annotations

import html
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from faket.io import atomic_write


@dataclass(frozen=True)
class Swatch:
    """A table cell with a colour square before its text (e.g. a class and its colour)."""

    text: str
    colour: str
    """CSS hex colour, ``#rrggbb``."""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"#[0-9a-fA-F]{6}", self.colour):
            raise ValueError(f"colour must be #rrggbb, got {self.colour!r}")


Cell = str | Swatch
"""A table cell: text, or text after a colour square."""


@dataclass(frozen=True)
class Row:
    """One tomogram's row of thumbnails: a label, a PNG (relative path), text and links."""

    label: str
    image: str
    text: str = ""
    links: Sequence[tuple[str, str]] = ()
    """(text, relative href) of each file."""


@dataclass(frozen=True)
class Section:
    """One part of the report: a heading, a PNG (relative path), text, a table, rows, links.

    The first table row is the header. ``links`` are (text, relative href) pairs.
    """

    heading: str
    image: str | None = None
    text: str = ""
    table: Sequence[Sequence[Cell]] = field(default_factory=tuple)
    rows: Sequence[Row] = ()
    links: Sequence[tuple[str, str]] = ()


_STYLE = (
    "body{font-family:sans-serif;max-width:1240px;margin:1.5em auto;padding:0 1em;"
    "color:#222;line-height:1.4;}"
    "h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em;}"
    "h3{margin:.8em 0 .3em 0;font-size:1.05em;}"
    "img{max-width:100%;border:1px solid #ccc;}"
    "table{border-collapse:collapse;margin:.5em 0;}"
    "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right;}"
    "td:first-child,th:first-child{text-align:left;}"
    "th{background:#f3f3f3;}"
    ".swatch{display:inline-block;width:.9em;height:.9em;border:1px solid #444;"
    "margin-right:.3em;vertical-align:-.1em;}"
    ".links{font-size:.85em;color:#555;}.links a{margin-right:.7em;}"
    "nav{font-size:.9em;}nav a{margin-right:1em;}"
    ".row{margin-bottom:1em;}"
)


def anchor(heading: str) -> str:
    """Return the HTML id of a section: its heading in lower case, words joined by -."""
    return re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-")


def _cell(tag: str, cell: Cell) -> str:
    if isinstance(cell, Swatch):
        square = f'<span class="swatch" style="background:{cell.colour}"></span>'
        return f"<{tag}>{square}{html.escape(cell.text)}</{tag}>"
    return f"<{tag}>{html.escape(str(cell))}</{tag}>"


def _table(table: Sequence[Sequence[Cell]]) -> list[str]:
    header, *rows = table
    parts = ["<table><tr>", *(_cell("th", c) for c in header), "</tr>"]
    parts.extend(f"<tr>{''.join(_cell('td', c) for c in row)}</tr>" for row in rows)
    parts.append("</table>")
    return parts


def _links(links: Sequence[tuple[str, str]]) -> str:
    items = " ".join(
        f'<a href="{html.escape(href)}">{html.escape(text)}</a>' for text, href in links
    )
    return f'<p class="links">{items}</p>'


def _image(src: str) -> str:
    src = html.escape(src)
    return f'<p><a href="{src}"><img src="{src}" alt="{src}"></a></p>'


def _row(row: Row) -> list[str]:
    parts = [f'<div class="row"><h3>{html.escape(row.label)}</h3>', _image(row.image)]
    if row.text:
        parts.append(f"<p>{html.escape(row.text)}</p>")
    if row.links:
        parts.append(_links(row.links))
    parts.append("</div>")
    return parts


def _anchors(sections: Sequence[Section]) -> list[str]:
    """Return each section's id, `anchor` of its heading, made unique with -2, -3, ..."""
    ids: list[str] = []
    for section in sections:
        base = anchor(section.heading) or "section"
        name, k = base, 1
        while name in ids:
            k += 1
            name = f"{base}-{k}"
        ids.append(name)
    return ids


def _section(section: Section, section_id: str) -> list[str]:
    parts = [f'<h2 id="{section_id}">{html.escape(section.heading)}</h2>']
    if section.text:
        parts.append(f"<p>{html.escape(section.text)}</p>")
    if section.links:
        parts.append(_links(section.links))
    if section.table:
        parts.extend(_table(section.table))
    if section.image:
        parts.append(_image(section.image))
    for row in section.rows:
        parts.extend(_row(row))
    return parts


def render_report(title: str, sections: Sequence[Section]) -> str:
    """Return the HTML of a report page: a title, a contents line, then each section."""
    ids = _anchors(sections)
    contents = " ".join(
        f'<a href="#{i}">{html.escape(s.heading)}</a>' for i, s in zip(ids, sections, strict=True)
    )
    parts = [
        "<!doctype html>",
        '<html><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<nav>{contents}</nav>",
    ]
    for section, section_id in zip(sections, ids, strict=True):
        parts.extend(_section(section, section_id))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(path: str | os.PathLike[str], title: str, sections: Sequence[Section]) -> None:
    """Write the report page atomically."""
    with atomic_write(path) as tmp:
        tmp.write_text(render_report(title, sections), encoding="utf-8")
