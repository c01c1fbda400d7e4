"""Small HTML helpers: escaping, number formats, tables, sections and the page shell.

No template engine and no JavaScript: pages are static, self-contained (inline CSS) and open
without a network. Every table carries the numbers of the plot next to it, so a page reads
without its images. Numbers in tables: fractions shown as decimals with 4 significant places
(``fmt``), or as percentages where the header says ``%``.
"""
from __future__ import annotations

import html
import math
from typing import Any, Iterable, Sequence

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;color:#1d2330;background:#fff}
header{background:#1d2b45;color:#fff;padding:14px 24px}header h1{margin:0;font-size:22px}
header a{color:#cfe0ff}main{padding:8px 24px 40px;max-width:1500px}
h2{border-bottom:2px solid #d7dde8;padding-bottom:4px;margin-top:34px;font-size:19px}
h3{font-size:16px;margin:18px 0 6px}
table{border-collapse:collapse;margin:6px 0 12px;font-size:12.5px}
th,td{border:1px solid #d7dde8;padding:3px 7px;text-align:right;vertical-align:top}td:not(.t){white-space:nowrap}
th{background:#eef2f8;position:sticky;top:0}td.t,th.t{text-align:left}
tr:nth-child(even) td{background:#fafbfd}
.banner{padding:10px 14px;margin:12px 0;border-radius:4px;font-weight:600}
.bad{background:#fde2e1;border:1px solid #e0a09c;color:#7d1d17}
.good{background:#e3f4e6;border:1px solid #9fd0a8;color:#1d5a29}
.warn{background:#fff4d6;border:1px solid #e6c66d;color:#6b4e00}
.muted{color:#6a7385;font-size:12px}.pill{display:inline-block;padding:0 6px;border-radius:8px;font-size:11px}
.pass{background:#e3f4e6;color:#1d5a29}.fail{background:#fde2e1;color:#7d1d17}.warnp{background:#fff4d6;color:#6b4e00}
img{max-width:100%;border:1px solid #e4e8ef;margin:4px 0}
.bar{display:inline-block;height:9px;background:#4a78c2;vertical-align:middle;margin-right:4px}
.grid{display:flex;flex-wrap:wrap;gap:16px}.grid>div{flex:1 1 420px;min-width:0}
nav.toc a{margin-right:12px}ol.leaves{columns:5;font-size:12px;margin:4px 0 12px}code{font-size:12px}
"""


def esc(x: Any) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def fmt(x: Any, digits: int = 4) -> str:
    """A number for a table: ``n/a`` for None/NaN, integers as is, floats with ``digits``
    significant places (``g`` format), booleans as yes/no, other values escaped."""
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if hasattr(x, "item") and not isinstance(x, str):
        try:
            x = x.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if math.isnan(x):
            return "n/a"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return f"{x:.{digits}g}"
    return esc(x)


def pct(x: Any, digits: int = 2) -> str:
    """A fraction shown as a percentage (0.1234 -> ``12.34%``)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{100.0 * float(x):.{digits}f}%"


def status_pill(status: Any) -> str:
    s = str(status or "")
    cls = {"pass": "pass", "fail": "fail", "warn": "warnp"}.get(s, "")
    return f'<span class="pill {cls}">{esc(s)}</span>'


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], *, table_id: str | None = None,
          text_cols: int = 1, raw: bool = False, caption: str | None = None) -> str:
    """An HTML table. Cells are formatted with ``fmt`` unless ``raw`` (already HTML). The first
    ``text_cols`` columns are left-aligned."""
    tid = f' id="{esc(table_id)}"' if table_id else ""
    out = [f"<table{tid}>"]
    if caption:
        out.append(f"<caption class='muted'>{esc(caption)}</caption>")
    out.append("<thead><tr>" + "".join(
        f'<th class="{"t" if i < text_cols else ""}">{esc(h)}</th>' for i, h in enumerate(header))
        + "</tr></thead><tbody>")
    n = 0
    for r in rows:
        n += 1
        cells = []
        for i, v in enumerate(r):
            body = v if raw and isinstance(v, str) else fmt(v)
            cells.append(f'<td class="{"t" if i < text_cols else ""}">{body}</td>')
        out.append("<tr>" + "".join(cells) + "</tr>")
    if n == 0:
        out.append(f'<tr><td class="t" colspan="{len(header)}">none</td></tr>')
    out.append("</tbody></table>")
    return "".join(out)


def kv_table(pairs: Iterable[tuple[str, Any]], *, table_id: str | None = None) -> str:
    return table(["field", "value"], ([k, v] for k, v in pairs), table_id=table_id, text_cols=2)


def img(src: str, alt: str, *, img_id: str | None = None) -> str:
    i = f' id="{esc(img_id)}"' if img_id else ""
    return f'<img{i} src="{esc(src)}" alt="{esc(alt)}" loading="lazy">'


def bar(fraction: float, width_px: int = 120) -> str:
    """An inline CSS bar of ``fraction`` (clipped to [0, 1]) of ``width_px``."""
    f = 0.0 if fraction is None or not math.isfinite(float(fraction)) else min(max(float(fraction), 0.0), 1.0)
    return f'<span class="bar" style="width:{f * width_px:.1f}px"></span>'


def section(sec_id: str, title: str, body: str) -> str:
    return f'<section id="{esc(sec_id)}"><h2>{esc(title)}</h2>{body}</section>'


def banner(text: str, kind: str, *, banner_id: str | None = None) -> str:
    i = f' id="{esc(banner_id)}"' if banner_id else ""
    return f'<div{i} class="banner {esc(kind)}">{esc(text)}</div>'


#: click a table header to sort its rows (numbers numerically); inline, no network; without
#: JavaScript the tables keep their server-side order
SORT_JS = ("document.querySelectorAll('table').forEach(function(t){t.querySelectorAll('th').forEach("
           "function(th,i){th.style.cursor='pointer';th.addEventListener('click',function(){var b=t.tBodies[0];"
           "var rows=Array.prototype.slice.call(b.rows);var asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';"
           "rows.sort(function(x,y){var a=(x.cells[i]||{}).textContent||'',c=(y.cells[i]||{}).textContent||'';"
           "var p=parseFloat(a),q=parseFloat(c);var r=(!isNaN(p)&&!isNaN(q))?p-q:a.localeCompare(c);"
           "return asc?r:-r;});rows.forEach(function(r){b.appendChild(r);});});});});")


def page(title: str, body: str, *, subtitle: str = "", nav: str = "") -> str:
    """A whole page; ``nav`` is raw HTML shown in the header."""
    sub = f'<div class="muted" style="color:#cfd8e6">{esc(subtitle)}</div>' if subtitle else ""
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{esc(title)}</title>"
            f"<style>{CSS}</style></head><body><header><h1>{esc(title)}</h1>{sub}{nav}</header>"
            f"<main>{body}</main><script>{SORT_JS}</script></body></html>")
