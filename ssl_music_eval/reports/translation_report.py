"""The report part of the tempo translation task (:mod:`ssl_music_eval.translation`): tables, one figure, targets."""
from __future__ import annotations

import math

import numpy as np


def _ci(s: dict, signed: bool = False) -> str:
    f = "+.3f" if signed else ".3f"
    if not (math.isfinite(s["ci_low"]) and math.isfinite(s["ci_high"])):
        return f"{s['mean']:{f}}"   # probes.bootstrap = 0: no interval to show
    return f"{s['mean']:{f}} [{s['ci_low']:{f}}, {s['ci_high']:{f}}]"


def protocol_line(p: dict) -> str:
    return (f"Tempo translation: clips stretched by {', '.join(f'{r:g}' for r in p['ratios'])} with {p['stretch']}; "
            f"fidelity = cosine of T(e, log r) (or of e, the identity baseline) with the stretched clip's embedding, "
            f"{p['interval']}; rank of the true stretched clip among all stretched clips; property k-NN k = {p['k']} "
            f"(other tracks; leave-one-out within the translated set, and translated queries against the "
            f"untranslated embeddings); tempo-class probe on {p['tempo_classes']} "
            f"log-spaced classes over {p['bpm_range'][0]:g}–{p['bpm_range'][1]:g} BPM, linear, same folds and seeds "
            f"with and without translated copies; retrieval demo at r = {p['demo_ratio']:g}.")


def _figure(task: str, rows: list[dict]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.0, 3.2))
    r = [row["ratio"] for row in rows]
    for name, style in (("translated", "o-"), ("identity", "s--")):
        m = [row[name]["mean"] for row in rows]
        err = np.nan_to_num([[row[name]["mean"] - row[name]["ci_low"] for row in rows],
                             [row[name]["ci_high"] - row[name]["mean"] for row in rows]])  # no CI: no bar
        label = "T(e, log r)" if name == "translated" else "e (identity)"
        ax.errorbar(r, m, yerr=err, fmt=style, capsize=3, label=label)
    ax.set_xscale("log")
    ax.set_xticks(r, [f"{x:g}" for x in r], fontsize=7)
    ax.minorticks_off()
    ax.set_xlabel("tempo ratio r")
    ax.set_ylabel("cosine to the stretched clip")
    ci = all(math.isfinite(row["translated"]["ci_low"]) for row in rows)
    ax.set_title(f"{task}: translation fidelity" + (" (95 % CI)" if ci else ""), fontsize=10)
    ax.legend(fontsize=7)
    return fig


def _gain_note(tp: dict) -> str:
    arms = tp.get("arms", {})
    if "translated" not in arms:
        return ""
    a, b = arms["plain"]["accuracy"], arms["translated"]["accuracy"]
    apart = b["ci_low"] > a["ci_high"]
    return f" ({b['mean'] - a['mean']:+.3f} accuracy; intervals {'apart' if apart else 'overlap'})"


def render(doc, task: str, res: dict) -> None:
    if res.get("protocol"):
        doc.para(protocol_line(res["protocol"]))
    if res.get("model_error"):
        doc.para(f"Tempo translation not evaluated: {res['model_error']}")
        return
    fid = res.get("fidelity", [])
    doc.table(["ratio", "T(e, log r)", "identity e", "gain (paired)", "CIs apart", "rank 1: T / e", "mean rank: T / e"],
              [[f"{f['ratio']:g}", _ci(f["translated"]), _ci(f["identity"]), _ci(f["gain"], True),
                "—" if math.isclose(f["ratio"], 1.0) else ("yes" if f["separated"] else "NO"),
                f"{f['rank_translated']['top1']:.2f} / {f['rank_identity']['top1']:.2f}",
                f"{f['rank_translated']['mean']:.1f} / {f['rank_identity']['mean']:.1f}"] for f in fid])
    if fid:
        doc.figure(_figure(task, fid), f"{task} translation fidelity")
    props = res.get("properties", {})
    if props:
        doc.para("Property preservation: weighted k-NN accuracy (other tracks only), mean over ratios ≠ 1. "
                 "'translated set': leave-one-out within the translated embeddings T(e, log r) of every clip (the "
                 "target's measure); 'queries': T(e, log r) or e_r queried against the untranslated embeddings.")
        doc.table(["attribute", "untranslated e", "translated set", "Δ", "within 0.02", "translated queries",
                   "real stretch set", "real stretch queries"],
                  [[a, f"{p['untranslated']:.3f}", f"{p['translated']:.3f}",
                    f"{p['translated'] - p['untranslated']:+.3f}",
                    "yes" if p["within_target"] else "NO", f"{p['translated_queries']:.3f}", f"{p['stretched']:.3f}",
                    f"{p['stretched_queries']:.3f}"] for a, p in props.items()])
    tp = res.get("tempo_probe", {})
    if tp.get("arms"):
        names = {"plain": "training embeddings only", "translated": "+ translated copies T(e, log r)",
                 "stretched": "+ embeddings of really stretched clips (reference)"}
        doc.para(f"Tempo-class probe ({len(tp['classes'])} classes: {', '.join(tp['classes'])}; {tp['n']} clips; "
                 f"copies added over the first seed's folds: {tp.get('copies_added', {})}); mean over seeds × folds"
                 + (" [95 % CI]:" if math.isfinite(tp["arms"]["plain"]["accuracy"]["ci_low"]) else ":"))
        doc.table(["training set", "accuracy", "balanced accuracy"],
                  [[names[a], _ci(s["accuracy"]), _ci(s["balanced_accuracy"])] for a, s in tp["arms"].items()])
        if tp.get("dropped_classes"):
            doc.para(f"Tempo classes with fewer clips than folds, left out: {tp['dropped_classes']}.")
    elif tp.get("error"):
        doc.para(f"Tempo probe not run: {tp['error']}.")
    ret = res.get("retrieval")
    if ret:
        t, e = ret["translated"], ret["untranslated"]
        doc.para(f"Same track, faster (r = {ret['ratio']:g}): over the {ret['queries_scored']} queries whose target "
                 f"tempo r × BPM another clip has (± {100 * ret['tolerance']:g} %), the top {ret['k']} other tracks "
                 f"searched with T(e, log r) are within ± {100 * ret['tolerance']:g} % of the target tempo "
                 f"{t['near_target']:.2f} of the time (with e: {e['near_target']:.2f}) and of the query's own tempo "
                 f"{t['near_query']:.2f} (with e: {e['near_query']:.2f}); mean log2 tempo ratio neighbour / query "
                 f"{t['mean_log2']:+.3f} vs {e['mean_log2']:+.3f} (target {ret['target_log2']:+.3f}).")
        attrs = [k for k in (ret["queries"][0] if ret["queries"] else {}) if k not in
                 ("path", "tempo", "target_tempo", "translated", "untranslated")]

        def nb(n):
            extra = "/".join(n[a] for a in attrs)
            return f"{n['tempo']:.0f}" + (f" {extra}" if extra else "")

        doc.table(["query", "tempo → target", "neighbours of T(e, log r)", "neighbours of e"],
                  [[q["path"] + (f" ({'/'.join(q[a] for a in attrs)})" if attrs else ""),
                    f"{q['tempo']:.0f} → {q['target_tempo']:.0f}", "; ".join(nb(n) for n in q["translated"]),
                    "; ".join(nb(n) for n in q["untranslated"])] for q in ret["queries"]])
    t = res.get("targets")
    if t:
        doc.bullets([f"fidelity above identity with non-overlapping CIs at every ratio ≠ 1: "
                     f"{'met' if t['fidelity_separated_at_every_ratio'] else 'MISSED'}",
                     f"property k-NN within 0.02 of untranslated: {'met' if t['properties_within_0.02'] else 'MISSED'}",
                     f"tempo probe gains with translated copies: {'met' if t['tempo_probe_gains'] else 'MISSED'}"
                     + _gain_note(tp)])
