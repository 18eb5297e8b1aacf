"""One self-contained HTML page that gathers a run's figures and tables."""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from faket.io import atomic_write


@dataclass(frozen=True)
class Section:
    """One part of the report: a heading, a PNG (relative path), text and a table."""

    heading: str
    image: str | None = None
    text: str = ""
    table: Sequence[Sequence[str]] = field(default_factory=tuple)


def render_report(title: str, sections: Sequence[Section]) -> str:
    """Return the HTML of a report page; the first table row is the header."""
    parts = [
        "<!doctype html>",
        '<html><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto;}"
        "img{max-width:100%;border:1px solid #ccc;}"
        "table{border-collapse:collapse;}td,th{border:1px solid #ccc;padding:2px 8px;}"
        "</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.heading)}</h2>")
        if section.text:
            parts.append(f"<p>{html.escape(section.text)}</p>")
        if section.image:
            src = html.escape(section.image)
            parts.append(f'<p><a href="{src}"><img src="{src}" alt="{src}"></a></p>')
        if section.table:
            header, *rows = section.table
            parts.append("<table><tr>")
            parts.extend(f"<th>{html.escape(str(c))}</th>" for c in header)
            parts.append("</tr>")
            for row in rows:
                cells = "".join(f"<td>{html.escape(str(c))}</td>" for c in row)
                parts.append(f"<tr>{cells}</tr>")
            parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(path: str | os.PathLike[str], title: str, sections: Sequence[Section]) -> None:
    """Write the report page atomically."""
    with atomic_write(path) as tmp:
        tmp.write_text(render_report(title, sections), encoding="utf-8")
