"""ssl_music_eval.tasks: the registry a suite's task types are run and checked through."""
import pytest

from ssl_music_eval.runner import evaluate_dataset, locality_attributes, tempo_columns
from ssl_music_eval.suite import load_dataset, load_suite
from ssl_music_eval.tasks import TASKS, EvalTask, register
from ssl_music.errors import ConfigError
from tests.evaluation.fakes import SpectralModel

SUITE = """
name: tasks
datasets:
  - name: tiny
    kind: synthetic
    path: {labels}
    tasks: [{tasks}]
seeds: [0]
folds: 2
baselines: {{random_init: false, mfcc_chroma: false}}
"""


def _suite(tmp_path, labels, tasks):
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE.format(labels=labels, tasks=tasks))
    return path


def test_a_registered_task_type_is_run_with_the_datasets_embeddings(tiny_corpus, tmp_path):
    seen = {}

    def count(ctx, task):
        seen.update(n=len(ctx.items), shape=ctx.feats["model"].shape, column=task.column)
        return {"type": "count", "column": task.column, "n": len(ctx.items)}

    register(EvalTask("count", count, "multiclass", attribute=True))
    try:
        cfg = load_suite(_suite(tmp_path, tiny_corpus, "{name: n, column: timbre, type: count}"))
        spec = cfg.datasets[0]
        res = evaluate_dataset(cfg, spec, load_dataset(spec), SpectralModel(crop_s=1.0), None, tmp_path / "c", False)
    finally:
        TASKS.pop("count")
    assert res["tasks"]["n"] == {"type": "count", "column": "timbre", "n": 12}
    assert seen == {"n": 12, "shape": (12, 6), "column": "timbre"}
    assert res["locality"]["scores"]["model"].keys() == {"timbre"}   # attribute=True: a locality attribute


def test_the_entries_decide_columns_locality_and_filters(tiny_corpus, tmp_path):
    cfg = load_suite(_suite(tmp_path, tiny_corpus, "{name: t, column: tempo, type: tempo}, "
                                                   "{name: k, column: key, type: multiclass}, "
                                                   "{name: tr, column: tempo, type: translation}"))
    spec = cfg.datasets[0]
    assert locality_attributes(cfg, spec) == ["tempo", "key"] and tempo_columns(spec) == ["tempo", "tempo"]
    with pytest.raises(ConfigError, match=r"tasks\.0\.type': must be one of .*got 'multiclas'; did you mean 'multiclass'\?"):
        load_suite(_suite(tmp_path, tiny_corpus, "{name: k, column: key, type: multiclas}"))
    with pytest.raises(ConfigError, match=r"where': applies to multiclass, multilabel, tempo, robustness tasks, not translation"):
        load_suite(_suite(tmp_path, tiny_corpus, "{name: tr, column: tempo, type: translation, where: key=C}"))


def test_a_registered_task_type_brings_its_report_section_and_comparison_rows(tmp_path):
    """A task type's own section of the report, its summary rows and its rows in a comparison of runs come from
    its entry: a plug-in type is shown without touching report.py or report_summary.py."""
    from ssl_music_eval.reports.report import write_report
    from ssl_music_eval.reports.report_summary import comparison_rows

    register(EvalTask("count", lambda ctx, task: {}, "multiclass",
                      render=lambda doc, task, t: doc.para(f"{task} counted {t['n']} clips"),
                      comparison=lambda t, fs: {"clips counted": t["n"]} if fs == "model" else {},
                      summary=lambda t: [("counter", "clips", {"model": t["n"], "librosa": 2})],
                      protocol=lambda cfg: {"by": "hand"},
                      protocol_line=lambda p: f"Counting: clips counted {p['by']}.",
                      terminal_rows=lambda task, t: [{"task": task, "metric": "clips", "model": t["n"],
                                                      "random_init": 0, "mfcc_chroma": 2}]))
    try:
        results = {"run": "r", "protocol": {"count": {"by": "hand"}}, "datasets": {"dev": {
            "n_items": 3, "n_embedded": 3, "skipped": [],
            "tasks": {"n": {"type": "count", "column": "timbre", "n": 3}}}}}
        write_report(results, tmp_path / "report")
        md = (tmp_path / "report" / "report.md").read_text()
        assert "n counted 3 clips" in md
        assert "Counting: clips counted hand." in md        # its protocol line, from its entry
        from ssl_music_eval.reports.report import summary_rows
        assert {"task": "n", "metric": "clips", "model": 3, "random_init": 0, "mfcc_chroma": 2} in summary_rows(results)
        assert "| dev | n | counter | clips | **3.000 ★** | – | – | 2.000 |" in md
        assert comparison_rows(results) == {"dev/n/clips counted": 3}
        assert comparison_rows(results, "random_init") == {}
    finally:
        TASKS.pop("count")


def test_a_registered_task_types_check_runs_before_any_embedding(tiny_corpus, tmp_path):
    from ssl_music_eval.suite import run_suite

    def refuse(cfg, spec, ds, task):
        raise ConfigError(f"task '{task.name}' of dataset '{spec.name}' wants a column '{task.column}x'")

    register(EvalTask("count", lambda ctx, task: {}, "multiclass", check=refuse))
    model = SpectralModel(crop_s=1.0)
    try:
        with pytest.raises(ConfigError, match="task 'n' of dataset 'tiny' wants a column 'timbrex'"):
            run_suite("fake.ckpt", _suite(tmp_path, tiny_corpus, "{name: n, column: timbre, type: count}"),
                      tmp_path / "run", model=model, progress=False)
    finally:
        TASKS.pop("count")
    assert model.calls == 0


def test_a_translation_task_checks_its_property_columns_before_embedding(tiny_corpus, tmp_path):
    from ssl_music_eval.suite import run_suite

    model = SpectralModel(crop_s=1.0)
    with pytest.raises(ConfigError, match=r"'translation.attributes': dataset 'tiny' has no label column 'mood'"):
        run_suite("fake.ckpt", _suite(tmp_path, tiny_corpus, "{name: tr, column: tempo, type: translation}"),
                  tmp_path / "run", ["translation.attributes=[mood]"], model=model, progress=False)
    assert model.calls == 0


def test_a_suite_records_the_protocol_of_the_task_types_it_uses(tiny_corpus, tmp_path):
    """runner.protocol asks each task type in the suite for its settings, and only those: a suite without a
    tempo task records no tempo grid."""
    from ssl_music_eval.runner import protocol
    from ssl_music_eval.suite import load_suite

    def cfg_with(task):
        return load_suite(_suite(tmp_path, tiny_corpus, task))

    model = SpectralModel(crop_s=1.0)
    with_tempo = protocol(cfg_with("{name: t, column: tempo, type: tempo}"), model)
    without = protocol(cfg_with("{name: n, column: timbre, type: multiclass}"), model)
    assert "BPM" in with_tempo["tempo"]["grid"] and "tempo" not in without
