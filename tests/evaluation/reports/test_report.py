import json
import re

from ssl_music_eval.reports.report import compare_runs, write_report
from ssl_music.cli import main


def _score(mean):
    return {"mean": mean, "std": 0.01, "ci_low": mean - 0.02, "ci_high": mean + 0.02}


def make_results(run="run_a", genre=0.8, mood_auc=0.7, acc1=0.5, loc=0.6):
    classes = ["blues", "jazz", "rock"]
    return {
        "format": "ssl_music.eval/1", "run": run, "checkpoint": "x.ckpt", "identity": "abc", "suite": "s.yaml",
        "protocol": {"probes": ["linear"], "seeds": [0, 1], "folds": 3, "knn_ks": [1, 5], "locality_k": 5,
                     "crop_s": 3.0, "sample_rate": 16000, "hop_s": None, "baselines": ["random_init", "mfcc_chroma"],
                     "tempo": {"reference": "click", "grid": "60–200 BPM in 2 % steps"}},
        "datasets": {"toy": {
            "n_items": 10, "n_embedded": 9, "skipped": [["/data/broken.wav", "cannot decode"]],
            "tasks": {
                "genre": {"type": "multiclass", "column": "genre",
                          "probes": {"linear": {"model": {"accuracy": _score(genre)},
                                                "random_init": {"accuracy": _score(0.4)},
                                                "mfcc_chroma": {"accuracy": _score(0.6)}}},
                          "knn": {"model": {"1": genre - 0.1, "5": genre}, "random_init": {"1": 0.3, "5": 0.35}},
                          "confusion": {"classes": classes, "matrix": [[3, 0, 0], [1, 2, 0], [0, 0, 3]]}},
                "mood_tags": {"type": "multilabel", "column": "mood",
                              "probes": {"linear": {"model": {"roc_auc": _score(mood_auc), "pr_auc": _score(0.3)},
                                                    "random_init": {"roc_auc": _score(0.55), "pr_auc": _score(0.2)}}}},
                "tempo_bpm": {"type": "tempo", "column": "bpm",
                              "tempo": {"model": {"acc1": acc1, "acc2": 0.9}, "librosa": {"acc1": 0.6, "acc2": 0.95},
                                        "n": 9}},
            },
            "locality": {"k": 5, "scores": {"model": {"genre": loc}, "random_init": {"genre": 0.4}},
                         "chance": {"genre": 0.33}},
            "projection": {"method": "pca", "xy": [[i * 0.1, (i % 3) * 0.2] for i in range(9)],
                           "labels": {"genre": [classes[i % 3] for i in range(9)],
                                      "bpm": [str(90 + i) for i in range(9)]}},
        }},
    }


def test_html_report_is_self_contained_and_shows_every_task(tmp_path):
    results = make_results()
    html_path = write_report(results, tmp_path)
    page = html_path.read_text()
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page.lower()
    srcs = re.findall(r'src="([^"]*)"', page)
    assert len(srcs) >= 5, "expected figures: scores, k-NN, confusion, tempo, locality, projection"
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not re.search(r"<link|url\(", page)
    saved = json.loads((tmp_path / "results.json").read_text())
    for ds in saved["datasets"].values():
        for task in ds["tasks"]:
            assert f"Task {task}" in page
            assert f"Task {task}" in (tmp_path / "report.md").read_text()
    assert "Skipped files: 1" in page and "/data/broken.wav" in page
    assert "0.800 ± 0.010 [0.780, 0.820]" in page  # mean ± std [95 % CI]
    assert "librosa" in page and "Protocol" in page and "seeds [0, 1]" in page


def test_compare_runs_marks_best_per_row(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write_report(make_results("run_a", genre=0.8, mood_auc=0.6, acc1=0.7), a)
    write_report(make_results("run_b", genre=0.7, mood_auc=0.9, acc1=0.7), b)
    summary = compare_runs([a, b], tmp_path / "cmp")
    best = summary["best"]
    assert best["toy/genre/linear accuracy"] == ["run_a"]
    assert best["toy/mood_tags/linear roc_auc"] == ["run_b"]
    assert best["toy/tempo_bpm/tempo acc1"] == ["run_a", "run_b"]  # ties share the mark
    md = (tmp_path / "cmp" / "compare.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| toy/genre/linear accuracy"))
    assert row.split("|")[2].strip() == "**0.800 ★**" and row.split("|")[3].strip() == "0.700"
    page = (tmp_path / "cmp" / "compare.html").read_text()
    details = page.split("<h2>Details</h2>")[1]  # the summary above marks its own rows
    assert details.count('class="best"') == sum(len(v) for v in best.values())
    assert all(s.startswith("data:image/png;base64,") for s in re.findall(r'src="([^"]*)"', page))


def test_compare_cli(tmp_path, capsys):
    write_report(make_results("run_a"), tmp_path / "a")
    write_report(make_results("run_b", genre=0.9), tmp_path / "b")
    assert main(["report", "compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "c")]) == 0
    assert (tmp_path / "c" / "compare.html").is_file()
    assert main(["report", "compare", str(tmp_path / "nope"), "--out", str(tmp_path / "c")]) == 2
    assert "results.json" in capsys.readouterr().err


def test_summary_rows_for_the_terminal():
    from ssl_music_eval.reports.report import summary_rows

    rows = {(r["task"], r["metric"]): r for r in summary_rows(make_results(genre=0.8))}
    assert rows[("genre", "linear accuracy")]["model"] == 0.8
    assert rows[("genre", "linear accuracy")]["mfcc_chroma"] == 0.6
    assert rows[("genre", "knn@5")]["random_init"] == 0.35
    assert rows[("tempo_bpm", "head acc1 (librosa)")]["model"] == 0.5
    assert rows[("tempo_bpm", "head acc2 (librosa)")]["mfcc_chroma"] == 0.95  # librosa in the classical column


def test_compare_shows_each_runs_augmentation_chain(tmp_path):
    for name, chain in (("a", "{}"), ("b", "{pitch_shift: {p: 0.8, params: {min_semitones: -2.0, max_semitones: 2.0}}}")):
        write_report(make_results(f"run_{name}"), tmp_path / name)
        (tmp_path / name / "config.yaml").write_text(f"augment:\n  chain: {chain}\n")
    summary = compare_runs([tmp_path / "a", tmp_path / "b"], tmp_path / "cmp")
    assert summary["chains"] == {"run_a": "none (no augmentation)",
                                 "run_b": "pitch_shift p=0.8 (min_semitones=-2, max_semitones=2)"}
    md = (tmp_path / "cmp" / "compare.md").read_text()
    assert "| run_b | pitch_shift p=0.8 (min_semitones=-2, max_semitones=2) |" in md


def test_protocol_names_the_interval_method(tmp_path):
    from ssl_music_eval.metrics import ci_method

    results = make_results()
    results["protocol"]["interval"] = ci_method(300)
    write_report(results, tmp_path / "new")
    md = (tmp_path / "new" / "report.md").read_text()
    protocol = md.split("## Protocol")[1].split("## Dataset")[0]
    assert "Intervals: 95 % CI = the reported mean ± 1.96 × its bootstrap standard error" in protocol
    assert "300 resamples of the test items" in protocol and "seeds × folds" in protocol
    # results.json from before the method was recorded: the report says so instead of claiming one
    write_report(make_results(), tmp_path / "old")
    assert "Intervals: method not recorded" in (tmp_path / "old" / "report.md").read_text()
