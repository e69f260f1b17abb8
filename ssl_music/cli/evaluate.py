"""`ssl-music evaluate`: an evaluation suite on a checkpoint -> results.json, report.md, report.html."""
from __future__ import annotations

import argparse
from pathlib import Path

from ssl_music_eval.embed import bare_reason
from ssl_music_eval import suite


def _cmd_evaluate(args: argparse.Namespace) -> int:
    results = suite.run_suite(args.checkpoint, args.suite, args.out, args.overrides, data=args.data or (),
                        progress=not args.quiet)
    for name, ds in results["datasets"].items():
        print(f"{name}: {ds['n_embedded']}/{ds['n_items']} files embedded, {len(ds['skipped'])} skipped")
        for path, reason in ds["skipped"][:suite.SKIPS_SHOWN]:
            print(f"  skipped {path}: {bare_reason(path, reason)}")
        if len(ds["skipped"]) > suite.SKIPS_SHOWN:
            print(f"  ... and {len(ds['skipped']) - suite.SKIPS_SHOWN} more (all listed in the report)")
        for task, t in ds["tasks"].items():
            for probe, sets in t.get("probes", {}).items():
                for metric, s in sets.get("model", {}).items():
                    print(f"  {task:<14} {probe:<6} {metric:<16} {s['mean']:.3f} ± {s['std']:.3f}")
            if "model" in t.get("tempo", {}):
                print(f"  {task:<14} tempo  acc1 {t['tempo']['model']['acc1']:.3f} acc2 {t['tempo']['model']['acc2']:.3f}")
            for k, s in t.get("segmentation", {}).get("scores", {}).get("model", {}).items():
                print(f"  {task:<14} segmentation {k.upper()} F {s['f']['mean']:.3f} [{s['f']['ci_low']:.3f}, "
                      f"{s['f']['ci_high']:.3f}] ({t['n']} tracks)")
            tr = t.get("translation", {})
            for label, v in tr.get("headline", {}).items():
                print(f"  {task:<14} {label} {v:+.3f} ({t['n']} clips)")
            if "model_error" in tr:
                print(f"  {task:<14} not evaluated: {tr['model_error']}")
    print(f"report: {Path(args.out) / 'report.html'}")
    return 0


def add_cli(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Run an evaluation suite (configs/eval/*.yaml) on a checkpoint: embeddings (cached), linear/MLP probes, "
        "k-NN, locality, tempo, segmentation (HR@0.5 / HR@3), tempo translation, against random-init and "
        "MFCC+chroma baselines; writes results.json, report.md "
        "and report.html into --out. Any suite key can be overridden as key=value, list items by index, e.g. "
        "datasets.0.path=/data/gtzan folds=10 'seeds=[0,1]'.")
    parser.add_argument("--checkpoint", required=True, help="ssl_music checkpoint (.ckpt)")
    parser.add_argument("--suite", required=True, help="suite YAML, e.g. configs/eval/synthetic.yaml")
    parser.add_argument("--out", required=True, help="output folder for results.json and the reports")
    parser.add_argument("--data", action="append", metavar="[NAME=]PATH",
                        help="dataset path: PATH replaces the first dataset's path, NAME=PATH the named "
                             "dataset's (repeatable); same as datasets.<i>.path=PATH")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="suite overrides, e.g. folds=10 datasets.0.path=DIR")
    parser.set_defaults(func=_cmd_evaluate)
