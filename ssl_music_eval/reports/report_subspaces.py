"""The report's part for an embedding with named subspaces (issue 24): which subspace answers which
property (its locality per attribute), and the weighted-retrieval table."""
from __future__ import annotations

from ssl_music_eval.reports.report_doc import Doc, finite
from ssl_music_eval.subspaces import PREFIX


def answers(loc: dict) -> list[str]:
    """One line per attribute: the subspace whose neighbours share it most, against the others and chance."""
    parts = {fs[len(PREFIX):]: s for fs, s in loc.get("scores", {}).items() if fs.startswith(PREFIX)}
    lines = []
    for attr, chance in loc.get("chance", {}).items():
        vals = {p: s.get(attr) for p, s in parts.items() if finite(s.get(attr))}
        if not vals:
            continue
        best = max(vals, key=vals.get)
        rest = ", ".join(f"{p} {v:.3f}" for p, v in vals.items() if p != best)
        lines.append(f"{attr}: {best} ({vals[best]:.3f}; {rest}; chance {chance:.3f})")
    return lines


def _cell(c: dict) -> str:
    if not finite(c.get("mean")):
        return "–"
    ci = f" [{c['ci_low']:.3f}, {c['ci_high']:.3f}]" if finite(c.get("ci_low")) and finite(c.get("ci_high")) else ""
    return f"{c['mean']:.3f}{ci}"


def add_subspaces(doc: Doc, loc: dict) -> None:
    """Under a dataset's locality table: the subspace answering each attribute, then weighted retrieval."""
    lines = answers(loc)
    if lines:
        doc.para(f"Which subspace answers which property (locality@{loc.get('k')} per subspace):")
        doc.bullets(lines)
    w = loc.get("weighted")
    if not w:
        return
    doc.heading(f"Weighted retrieval (locality@{w['k']})", 3)
    doc.para(f"Neighbours by weighted cosine: {w['base']} at weight 1, one other subspace at w, the rest at 0; "
             "mean share of neighbours with the query's label [95 % bootstrap interval over queries].")
    head = ["subspace", "attribute"] + [f"w = {x:g}" for x in w["weights"]]
    rows = [[part, attr] + [_cell(c) for c in cells]
            for part, attrs in w["parts"].items() for attr, cells in attrs.items()]
    doc.table(head, rows)
