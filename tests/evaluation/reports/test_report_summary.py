import pytest

from ssl_music_eval.reports.report import compare_runs, write_report
from ssl_music_eval.reports.report_summary import knn_k, summary_table_rows
from tests.evaluation.reports.test_report import _score, make_results

HEADER = "| dataset | task | probe | metric | model | random init | MFCC+chroma | librosa | Δ vs random init |"


def _summary(md: str) -> dict[tuple[str, str, str], list[str]]:
    """The summary table's rows by (task, probe, metric), cells after the metric."""
    lines = md.splitlines()
    start = lines.index(HEADER) + 2
    rows = {}
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[tuple(cells[1:4])] = cells[4:]
    return rows


def test_summary_table_comes_first_and_answers_per_row(tmp_path):
    write_report(make_results(genre=0.837, acc1=0.5), tmp_path)
    md = (tmp_path / "report.md").read_text()
    first_table = next(line for line in md.splitlines() if line.startswith("|"))
    assert first_table == HEADER
    assert md.index(HEADER) < md.index("## Details") < md.index("## Protocol") < md.index("## Dataset toy")
    rows = _summary(md)
    model, rand, mfcc, librosa, delta = rows[("genre", "linear", "accuracy")]
    assert (model, rand, mfcc, librosa) == ("**0.837 ★**", "0.400", "0.600", "–")
    assert float(delta) == pytest.approx(0.837 - 0.4, abs=5e-4) and delta == "+0.437"
    # the number the detailed probe table shows for the same task, probe and metric
    assert "| genre | linear | accuracy | 0.837 ± 0.010 [0.817, 0.857] |" in md
    assert rows[("genre", "k-NN@5", "accuracy")] == ["**0.837 ★**", "0.350", "–", "–", "+0.487"]
    # a multi-label task: its primary metric (macro ROC-AUC), and no MFCC+chroma run
    assert rows[("mood_tags", "linear", "roc_auc")] == ["**0.700 ★**", "0.550", "–", "–", "+0.150"]
    assert ("mood_tags", "linear", "pr_auc") not in rows
    # tempo: the head against librosa, which wins Acc1 here; no random-init head, so no Δ
    assert rows[("tempo_bpm", "tempo head", "Acc1")] == ["0.500", "–", "–", "**0.600 ★**", "–"]
    assert rows[("tempo_bpm", "tempo head", "Acc2")] == ["0.900", "–", "–", "**0.950 ★**", "–"]
    # the locality attribute 'genre' is the genre task's column: its row sits with that task
    assert rows[("genre", "locality@5", "neighbour share (chance 0.330)")] == ["**0.600 ★**", "0.400", "–", "–",
                                                                              "+0.200"]
    keys = list(rows)
    assert keys.index(("genre", "locality@5", "neighbour share (chance 0.330)")) < keys.index(
        ("mood_tags", "linear", "roc_auc"))


def test_best_mark_follows_the_best_column(tmp_path):
    write_report(make_results(genre=0.5), tmp_path)
    rows = _summary((tmp_path / "report.md").read_text())
    assert rows[("genre", "linear", "accuracy")] == ["0.500", "0.400", "**0.600 ★**", "–", "+0.100"]


def test_html_shows_the_summary_plot_before_the_details(tmp_path):
    page = write_report(make_results(), tmp_path).read_text()
    summary, details = page.split("<h2>Details</h2>")
    assert summary.index("<h2>Summary</h2>") < summary.index("<table>") < summary.index('<img alt="summary')
    assert summary.count("<img") == 1 and summary.count("<table>") == 1
    assert 'src="data:image/png;base64,' in summary
    assert "<h2>Protocol</h2>" in details and "<h3>Task genre" in details
    assert "Δ = model − random init" in summary and "locality@5" in summary
    md = (tmp_path / "report.md").read_text()
    assert md.index("![summary") < md.index("## Details")


def test_knn_row_uses_the_k_closest_to_ten():
    assert knn_k(["1", "5", "20"]) == "5"
    assert knn_k(["1", "10", "20"]) == "10"
    assert knn_k(["5", "15"]) == "5"      # a tie goes to the smaller k
    assert knn_k(["20", "50"]) == "20"
    assert knn_k([]) is None


def test_segmentation_rows_take_the_better_classical_frames():
    results = {"datasets": {"joined": {"tasks": {"sections": {"type": "segmentation", "segmentation": {"scores": {
        "model": {"hr@3": {"f": _score(0.8)}}, "random_init": {"hr@3": {"f": _score(0.5)}},
        "mfcc": {"hr@3": {"f": _score(0.6)}}, "chroma": {"hr@3": {"f": _score(0.65)}}}}}}}}}
    (row,) = summary_table_rows(results)
    assert (row.task, row.probe, row.metric) == ("sections", "Foote novelty", "HR@3 F")
    assert row.cells["mfcc_chroma"] == pytest.approx((0.65, 0.63, 0.67))
    assert row.mean("model") - row.mean("random_init") == pytest.approx(0.3)


def test_compare_leads_with_a_summary_per_run(tmp_path):
    write_report(make_results("run_a", genre=0.8, acc1=0.7), tmp_path / "a")
    write_report(make_results("run_b", genre=0.7, acc1=0.4), tmp_path / "b")
    results = make_results("run_c", genre=0.9)
    del results["datasets"]["toy"]["tasks"]["tempo_bpm"]
    results["datasets"]["toy"]["locality"]["chance"]["genre"] = 0.5  # another corpus balance: still one row
    write_report(results, tmp_path / "c")
    compare_runs([tmp_path / "a", tmp_path / "b", tmp_path / "c"], tmp_path / "cmp")
    md = (tmp_path / "cmp" / "compare.md").read_text()
    header = "| dataset | task | probe | metric | run_a | run_b | run_c |"
    assert next(line for line in md.splitlines() if line.startswith("|")) == header
    assert md.index(header) < md.index("## Details") < md.index("## Runs")
    assert "| toy | genre | linear | accuracy | 0.800 | 0.700 | **0.900 ★** |" in md
    assert "| toy | tempo_bpm | tempo head | Acc1 | **0.700 ★** | 0.400 | – |" in md
    assert len([line for line in md.splitlines() if line.startswith("| toy | genre | locality@5 |")]) == 1
    page = (tmp_path / "cmp" / "compare.html").read_text()
    assert page.split("<h2>Details</h2>")[0].count('<img alt="summary') == 1
