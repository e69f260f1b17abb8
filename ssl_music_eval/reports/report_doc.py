"""What every report part shares: the Markdown + HTML document builder and the number formats.

A module of its own so that :mod:`ssl_music_eval.reports.report` (the whole report, compare) and
:mod:`ssl_music_eval.reports.report_summary` (the first screen) can both use it without importing each other.
"""
from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

FEATURE_SETS = ("model", "random_init", "mfcc_chroma")
SET_NAMES = {"model": "model", "random_init": "random init", "mfcc_chroma": "MFCC+chroma"}
CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left}
th{background:#f2f2f2}img{max-width:100%;margin:.5em 0}code,pre{background:#f6f6f6;padding:.1em .3em}
h1,h2,h3{border-bottom:1px solid #eee}.best{font-weight:bold;background:#eef8ee}"""


class Doc:
    """Builds Markdown and HTML side by side; figures go to PNG files (Markdown) and data URIs (HTML)."""

    def __init__(self, title: str, fig_dir: Path | None):
        self.md: list[str] = [f"# {title}", ""]
        self.html: list[str] = [f"<h1>{html.escape(title)}</h1>"]
        self.title, self.fig_dir, self.n_figs = title, fig_dir, 0

    def heading(self, text: str, level: int = 2) -> None:
        self.md += ["#" * level + " " + text, ""]
        self.html.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def para(self, text: str) -> None:
        self.md += [text, ""]
        self.html.append(f"<p>{html.escape(text)}</p>")

    def bullets(self, items: Sequence[str]) -> None:
        self.md += [f"- {i}" for i in items] + [""]
        self.html.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>")

    def table(self, header: Sequence[str], rows: Sequence[Sequence[str]], best: set = frozenset()) -> None:
        """``best``: (row, col) cells to emphasise (bold + ★ in Markdown, bold class in HTML)."""
        self.md += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for r, row in enumerate(rows):
            cells = [f"**{c} ★**" if (r, j) in best else str(c) for j, c in enumerate(row)]
            self.md.append("| " + " | ".join(cells) + " |")
        self.md.append("")
        out = ["<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"]
        for r, row in enumerate(rows):
            out.append("<tr>" + "".join(
                f'<td class="best">{html.escape(str(c))} ★</td>' if (r, j) in best else f"<td>{html.escape(str(c))}</td>"
                for j, c in enumerate(row)) + "</tr>")
        self.html.append("".join(out) + "</table>")

    def figure(self, fig, alt: str) -> None:
        plt = pyplot()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
        plt.close(fig)
        png = buf.getvalue()
        self.n_figs += 1
        if self.fig_dir is not None:
            self.fig_dir.mkdir(parents=True, exist_ok=True)
            name = f"fig{self.n_figs:02d}.png"
            (self.fig_dir / name).write_bytes(png)
            self.md += [f"![{alt}]({self.fig_dir.name}/{name})", ""]
        uri = "data:image/png;base64," + base64.b64encode(png).decode()
        self.html.append(f'<img alt="{html.escape(alt)}" src="{uri}">')

    def write(self, out_dir: Path, stem: str) -> None:
        (out_dir / f"{stem}.md").write_text("\n".join(self.md))
        page = (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{html.escape(self.title)}</title>"
                f"<style>{CSS}</style></head><body>{''.join(self.html)}</body></html>")
        (out_dir / f"{stem}.html").write_text(page)


def pyplot():
    """matplotlib.pyplot on the file-only backend: reports are drawn on machines without a display."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def fmt_score(s: dict) -> str:
    return f"{s['mean']:.3f} ± {s['std']:.3f} [{s['ci_low']:.3f}, {s['ci_high']:.3f}]"


def finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def best_keys(values: dict) -> list:
    """The keys holding the highest finite value (higher is better in every report row); ties share it."""
    vals = {k: v for k, v in values.items() if finite(v)}
    top = max(vals.values(), default=None)
    return [k for k, v in vals.items() if v == top]


def json_default(o: Any):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def bars(groups: list[str], series: dict[str, list], title: str, ylabel: str, err: dict | None = None,
          marks: list | None = None):
    """Grouped bars: one group per ``groups`` entry, one bar per series, optional error bars and chance marks."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(4.5, 1.1 * len(groups) * max(1, len(series)) * 0.45 + 2), 3.2))
    width = 0.8 / max(1, len(series))
    x = np.arange(len(groups))
    for i, (name, vals) in enumerate(series.items()):
        e = None
        if err and name in err:
            e = np.abs(np.asarray(err[name], dtype=float).T)
        ax.bar(x + i * width - 0.4 + width / 2, vals, width, yerr=e, capsize=3, label=name)
    if marks:
        ax.scatter(x, marks, marker="_", s=600, color="k", zorder=3, label="chance")
    ax.set_xticks(x, groups, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    return fig
