"""Tempo translation in the embedding space, measured (McCallum, Henkel et al., ICASSP 2024).

Copies a trained checkpoint into OUT (so its translator is written beside the copy, not beside the original),
trains a translator for its frozen encoder on its own unlabelled shards (``ssl-music tempo translate-train``),
then runs configs/eval/tempo_translation.yaml on the synthetic evaluation corpus and the dev set. Prints, per
dataset: fidelity per ratio (translated vs identity cosine, 95 % CIs, rank-1 share), property k-NN
(untranslated / translated / real stretch), the tempo-class probe with and without translated copies, the
retrieval summary, and which targets were met.

    python benchmarks/tempo_translation.py --checkpoint demo_out/run/checkpoints/last.ckpt \\
        --synthetic demo_out/corpus_eval/labels.csv --devset ../shared/devset/labels.csv --out /tmp/tt_bench
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "disabled")
REPO = Path(__file__).resolve().parents[1]


def train(ckpt: Path, args) -> dict:
    import ssl_music
    from ssl_music.translation import TranslatorConfig, save_translator, train_translator, translator_paths

    meta_path = translator_paths(ckpt)[1]
    if meta_path.is_file():
        return json.loads(meta_path.read_text())["summary"]
    model = ssl_music.load_encoder(ckpt, device=args.device)
    c = TranslatorConfig(crops=args.crops, rates_per_crop=args.rates_per_crop, steps=args.steps)
    t0 = time.perf_counter()
    translator, summary = train_translator(model, c, shards=args.shards, num_workers=args.workers,
                                           progress=lambda m: print(f"[bench] {time.perf_counter() - t0:5.0f} s {m}",
                                                                    flush=True) if "0/" in m else None)
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    save_translator(translator, ckpt, model.encoder, c, summary)
    return summary


def show(name: str, res: dict) -> None:
    print(f"\n== {name}: {res.get('n', '?')} clips")
    tr = res["translation"]
    if "model_error" in tr:
        print("  not evaluated:", tr["model_error"])
        return
    ci = lambda s: f"{s['mean']:.3f} [{s['ci_low']:.3f}, {s['ci_high']:.3f}]"  # noqa: E731
    print(f"  {'ratio':>6}  {'T(e, log r)':>22}  {'identity e':>22}  {'gain':>7}  apart  rank1 T/e")
    for f in tr["fidelity"]:
        print(f"  {f['ratio']:>6g}  {ci(f['translated']):>22}  {ci(f['identity']):>22}  {f['gain']['mean']:+.3f}  "
              f"{'yes' if f['separated'] else 'no ':>5}  "
              f"{f['rank_translated']['top1']:.2f}/{f['rank_identity']['top1']:.2f}")
    for a, p in tr["properties"].items():
        print(f"  k-NN {a:<11} untranslated {p['untranslated']:.3f}  translated set {p['translated']:.3f} "
              f"({p['translated'] - p['untranslated']:+.3f})  translated queries {p['translated_queries']:.3f}  "
              f"real stretch set {p['stretched']:.3f} / queries {p['stretched_queries']:.3f}")
    tp = tr["tempo_probe"]
    for arm, s in tp.get("arms", {}).items():
        print(f"  tempo probe {arm:<10} accuracy {ci(s['accuracy'])}  balanced {ci(s['balanced_accuracy'])}")
    r = tr["retrieval"]
    t, e = r["translated"], r["untranslated"]
    print(f"  retrieval r={r['ratio']:g} ({r['queries_scored']} queries): top-{r['k']} "
          f"within {100 * r['tolerance']:g} % "
          f"of the target tempo {t['near_target']:.2f} (e: {e['near_target']:.2f}), of the query tempo "
          f"{t['near_query']:.2f} (e: {e['near_query']:.2f}); mean log2 ratio {t['mean_log2']:+.3f} "
          f"(e: {e['mean_log2']:+.3f}, target {r['target_log2']:+.3f})")
    for q in r["queries"]:
        tempi = {key: ", ".join(f"{n['tempo']:.0f}" for n in q[key]) for key in ("translated", "untranslated")}
        print(f"    {q['path']} {q['tempo']:.0f} -> {q['target_tempo']:.0f} BPM: T: {tempi['translated']} | "
              f"e: {tempi['untranslated']}")
    print("  targets:", tr["targets"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--shards", default=None, help="default: the checkpoint's data.shards")
    p.add_argument("--synthetic", type=Path, required=True, help="synthetic evaluation corpus labels.csv")
    p.add_argument("--devset", type=Path, default=REPO.parent / "shared" / "devset" / "labels.csv")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--crops", type=int, default=2048)
    p.add_argument("--rates-per-crop", type=int, default=4)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--max-items", type=int, default=0, help="clips per dataset for the translation task (0 = all)")
    p.add_argument("--device", default="cpu")
    args = p.parse_args()

    from ssl_music_eval.suite import run_suite

    args.out.mkdir(parents=True, exist_ok=True)
    ckpt = args.out / "checkpoint" / args.checkpoint.name
    if not ckpt.is_file():
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(args.checkpoint, ckpt)
    summary = train(ckpt, args)
    print("[bench] translator:", json.dumps({k: summary[k] for k in ("pairs", "train_tracks", "train", "held_out",
                                                                      "seconds") if k in summary}))
    t0 = time.perf_counter()
    results = run_suite(ckpt, REPO / "configs" / "eval" / "tempo_translation.yaml", args.out / "eval",
                        [f"translation.max_items={args.max_items}", f"device={args.device}"],
                        data=[f"synthetic={args.synthetic}", f"devset={args.devset}"], progress=False)
    print(f"[bench] suite in {time.perf_counter() - t0:.0f} s; report {args.out / 'eval' / 'report.html'}")
    for name, ds in results["datasets"].items():
        show(name, ds["tasks"]["tempo_translation"])


if __name__ == "__main__":
    main()
