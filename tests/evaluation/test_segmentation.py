"""Segmentation: the algorithm on frames with known structure, the boundary datasets (SALAMI, Harmonix and
concatenated clips on tiny fake trees), and the suite's segmentation task end to end with a fake model."""
import csv
import json
from types import SimpleNamespace

import mir_eval
import numpy as np
import pytest
import soundfile as sf

from ssl_music_eval.datasets import load_csv_manifest, load_synthetic, parse_boundaries
from ssl_music_eval.segment_data import load_concatenated, load_harmonix, load_salami, read_boundary_file
from ssl_music_eval.segmentation import FrameFeatures, detect, frame_times, hit_rates, novelty, self_similarity
from ssl_music_eval.suite import load_suite, run_suite
from ssl_music.config import ConfigError
from ssl_music.errors import SSLMusicError
from tests.evaluation.fakes import SpectralModel

SR = 16000
SEG = SimpleNamespace(hop_s=0.5, kernel_s=4.0, peak_s=1.0, mean_s=2.0, delta=0.1, windows=[0.5, 3.0])


def _blocks(lengths, dim=8, noise=0.05, seed=0):
    """Frames of consecutive blocks, each around its own random direction: boundaries at the block joins."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(size=dim) + noise * rng.normal(size=(n, dim)) for n in lengths])


def test_novelty_peaks_at_block_joins_and_hit_rates_follow_mir_eval():
    frames = _blocks([20, 14, 26])                       # joins at frames 20 and 34
    times = np.arange(len(frames)) * 0.5 + 0.25
    est, nov, ssm = detect(frames, times, SEG)
    assert ssm.shape == (60, 60) and np.allclose(np.diag(ssm), 1.0)
    assert np.allclose(est, [times[20] - 0.25, times[34] - 0.25], atol=0.5)
    assert nov.max() == pytest.approx(1.0) and np.argmax(nov) in (19, 20, 33, 34)
    ref = [0.0, 10.0, 17.0, 30.0]
    hr = hit_rates(ref, est, 30.0, [0.5, 3.0])
    assert hr["hr@0.5"]["f"] == 1.0 and hr["hr@3"] == {"f": 1.0, "p": 1.0, "r": 1.0}
    # one miss and one false alarm at 0.5 s, both hits at 3 s: exactly mir_eval's numbers
    hr = hit_rates(ref, np.array([11.5, 17.2]), 30.0, [0.5, 3.0])
    p, r, f = mir_eval.segment.detection(mir_eval.util.boundaries_to_intervals(np.array(ref)),
                                         mir_eval.util.boundaries_to_intervals(np.array([0, 11.5, 17.2, 30])),
                                         window=0.5, trim=True)
    assert (hr["hr@0.5"]["p"], hr["hr@0.5"]["r"], hr["hr@0.5"]["f"]) == (p, r, f) == (0.5, 0.5, 0.5)
    assert hr["hr@3"]["f"] == 1.0
    assert hit_rates(ref, np.array([]), 30.0, [3.0])["hr@3"]["f"] == 0.0     # nothing found: F = 0


def test_track_edges_are_not_novel():
    # mirror padding: the start and end of a track are no boundary; the one join is the novelty maximum
    frames = _blocks([30, 12], noise=0.3)
    nov = novelty(self_similarity(frames), 6)
    assert nov[0] == pytest.approx(0.0, abs=1e-9) and nov[-1] == pytest.approx(0.0, abs=1e-9)
    assert abs(int(np.argmax(nov)) - 30) <= 1


def test_frame_features_sit_on_the_model_grid():
    wave = np.random.default_rng(0).normal(size=int(7.3 * SR)).astype(np.float32) * 0.1
    model = SpectralModel(crop_s=2.0)
    for kind, dim in (("mfcc", 20), ("chroma", 12)):
        f = FrameFeatures(kind, SR, 2.0).embed_windows(wave, SR, hop_s=0.5)
        assert f.shape == (len(model.embed_windows(wave, SR, hop_s=0.5)), dim) and np.isfinite(f).all()
    assert np.allclose(frame_times(3, 2.0, 0.5, SR), [1.0, 1.5, 2.0])


def test_boundaries_from_csv_synthetic_column_and_sections_csv(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"\0")
    assert parse_boundaries("0|9.5|4|30") == [0.0, 4.0, 9.5, 30.0]
    with pytest.raises(SSLMusicError):
        parse_boundaries("0|x")
    (tmp_path / "m.csv").write_text("path,bounds\na.wav,0|5|12\na.wav,12\n")
    ds = load_csv_manifest(tmp_path / "m.csv", {"bounds": "segmentation"})
    assert [it.labels["bounds"] for it in ds.items] == [[0.0, 5.0, 12.0]] and "at least two" in ds.missing[0]["reason"]
    # a synthetic corpus written before labels.csv had `boundaries`: read from sections.csv
    (tmp_path / "labels.csv").write_text("path,track_id,tempo,tempo_class,key,timbre,style,drums\n"
                                         "a.wav,synth_00000,120,1,C:maj,organ,rock,1\n")
    (tmp_path / "sections.csv").write_text("track_id,section,start_s,end_s\nsynth_00000,0,0.0,9.001\n"
                                           "synth_00000,1,9.0,20.0\n")
    ds = load_synthetic(tmp_path / "labels.csv")
    assert ds.tasks["boundaries"] == "segmentation" and ds.items[0].labels["boundaries"] == [0.0, 9.0, 20.0]


def _tone(path, seconds, freq, amp=0.3):
    t = np.arange(int(seconds * SR)) / SR
    sf.write(str(path), (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32), SR)


def test_salami_and_harmonix_trees(tmp_path):
    ann = tmp_path / "salami" / "annotations"
    for track, text in (("10", "0.0\tSilence\n0.22\tA\n5.5\tB\n8.0\tEnd\n"), ("12", None), ("14", "0.0\tA\n")):
        (ann / track / "parsed").mkdir(parents=True)
        if text:
            (ann / track / "parsed" / "textfile1_uppercase.txt").write_text(text)
    (ann / "12" / "parsed" / "textfile2_uppercase.txt").write_text("0 Silence\n3 A\n8 End\n")
    audio = tmp_path / "salami" / "audio"
    (audio / "12").mkdir(parents=True)
    _tone(audio / "10.wav", 8.0, 220.0), _tone(audio / "12" / "audio.wav", 8.0, 330.0), _tone(audio / "14.wav", 1, 99)
    ds = load_salami(audio, ann)
    assert [(it.track_id, it.labels["boundaries"]) for it in ds.items] == [("10", [0.0, 0.22, 5.5, 8.0]),
                                                                            ("12", [0.0, 3.0, 8.0])]
    assert ds.tasks == {"boundaries": "segmentation"} and "fewer than two" in ds.missing[0]["reason"]
    with pytest.raises(SSLMusicError, match="level"):
        load_salami(audio, ann, level="middle")
    seg = tmp_path / "harmonix" / "dataset" / "segments"
    seg.mkdir(parents=True)
    (seg / "0001_12step.txt").write_text("0.0 intro\n3.2 verse\n8.0 end\n")
    (seg / "0002_gone.txt").write_text("0.0 intro\n8.0 end\n")
    _tone(tmp_path / "harmonix" / "0001_12step.wav", 8.0, 440.0)
    ds = load_harmonix(tmp_path / "harmonix", tmp_path / "harmonix" / "dataset")
    assert [it.labels["boundaries"] for it in ds.items] == [[0.0, 3.2, 8.0]]
    assert "no audio file for 0002_gone" in ds.missing[0]["reason"]
    assert read_boundary_file(seg / "0001_12step.txt") == [0.0, 3.2, 8.0]


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    """Eight 4 s clips, each a tone of its own pitch and brightness, plus a missing one, in a manifest."""
    root = tmp_path_factory.mktemp("clips")
    rows = []
    for i in range(8):
        _tone(root / f"c{i}.wav", 4.0, 150.0 * 1.6 ** i, amp=0.1 + 0.05 * i)
        rows.append({"path": f"c{i}.wav", "style": "x"})
    rows.append({"path": "gone.wav", "style": "x"})
    with open(root / "labels.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, ["path", "style"])
        w.writeheader()
        w.writerows(rows)
    return root / "labels.csv"


def test_concatenated_tracks_have_their_joins_as_boundaries(tmp_path, clip_folder):
    ds = load_concatenated(clip_folder, tmp_path / "cat", clips_per_track=3, min_clip_s=2.0, sample_rate=SR, seed=1)
    assert len(ds.items) == 2 and ds.missing[0]["reason"] == "audio file not found"
    for it in ds.items:
        b = it.labels["boundaries"]
        x, sr = sf.read(it.path)
        assert len(b) == 4 and b[0] == 0 and np.all(np.diff(b) >= 2.0 - 1e-3) and np.all(np.diff(b) <= 4.0 + 1e-3)
        assert sr == SR and abs(len(x) / SR - b[-1]) < 1e-3 and np.abs(x).max() <= 0.96
    stamp = [it.path.stat().st_mtime_ns for it in ds.items]
    again = load_concatenated(clip_folder, tmp_path / "cat", clips_per_track=3, min_clip_s=2.0, sample_rate=SR, seed=1)
    assert [it.labels for it in again.items] == [it.labels for it in ds.items]
    assert [it.path.stat().st_mtime_ns for it in again.items] == stamp        # read back, not rewritten
    other = load_concatenated(clip_folder, tmp_path / "cat", clips_per_track=3, min_clip_s=2.0, sample_rate=SR, seed=2)
    assert [it.labels for it in other.items] != [it.labels for it in ds.items]
    with pytest.raises(SSLMusicError, match="clips_per_track"):
        load_concatenated(clip_folder, tmp_path / "x", clips_per_track=9)


def _suite(path, clips, **extra):
    text = f"""
name: seg
datasets:
  - name: joined
    kind: concat
    path: {clips}
    concat: {{clips_per_track: 4, min_clip_s: 3.0, sample_rate: {SR}, seed: 0}}
    tasks:
      - {{name: sections, column: boundaries, type: segmentation}}
segmentation: {{hop_s: 0.25, kernel_s: 2.0, peak_s: 1.0, mean_s: 2.0, delta: 0.1, bootstrap: 200}}
locality: {{k: 3, attributes: [tempo_class]}}
"""
    path.write_text(text + "".join(f"{k}: {v}\n" for k, v in extra.items()))
    return path


def test_suite_segmentation_task_end_to_end(tmp_path, clip_folder):
    suite = _suite(tmp_path / "s.yaml", clip_folder)
    model, rand = SpectralModel(identity="ckpt-seg", crop_s=1.0), SpectralModel(identity="random-seg", crop_s=1.0)
    res = run_suite("fake.ckpt", suite, tmp_path / "run", model=model, random_model=rand, progress=False)
    ds = res["datasets"]["joined"]
    assert ds["n_embedded"] == 2 and "locality" not in ds and "projection" not in ds
    t = ds["tasks"]["sections"]
    seg = t["segmentation"]
    assert t["type"] == "segmentation" and t["n"] == 2
    assert set(seg["scores"]) == {"model", "random_init", "mfcc", "chroma"}
    for fs, s in seg["scores"].items():
        for k in ("hr@0.5", "hr@3"):
            assert s[k]["f"]["ci_low"] <= s[k]["f"]["mean"] <= s[k]["f"]["ci_high"], (fs, k)
    assert seg["scores"]["model"]["hr@3"]["f"]["mean"] >= 0.8   # tone changes are in the fake's spectral features
    assert set(seg["delta_f"]) == {"random_init", "mfcc", "chroma"}
    assert seg["boundaries_per_track"]["reference"] == 3.0
    assert len(seg["example"]["sets"]["model"]["ssm"]) == len(seg["example"]["times"])
    assert res["protocol"]["segmentation"]["kernel_s"] == 2.0
    md = (tmp_path / "run" / "report.md").read_text()
    assert "HR@0.5 F" in md and "HR@3 F" in md and "Segmentation: Foote checkerboard novelty" in md
    assert "self-similarity with boundaries" in md and (tmp_path / "run" / "concat" / "joined" / "tracks.json").is_file()
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    from ssl_music_eval.reports.report import comparison_rows, summary_rows

    hr3 = [r for r in summary_rows(saved) if r["metric"] == "HR@3 F (classical: best)"][0]
    assert hr3["mfcc_chroma"] == max(seg["scores"][b]["hr@3"]["f"]["mean"] for b in ("mfcc", "chroma"))
    assert comparison_rows(saved)["joined/sections/HR@3 F"] == seg["scores"]["model"]["hr@3"]["f"]["mean"]
    calls = model.calls
    run_suite("fake.ckpt", suite, tmp_path / "run", model=model, random_model=rand, progress=False)
    assert model.calls == calls, "frames are cached like track embeddings"


def test_segmentation_config_is_checked(tmp_path, clip_folder):
    suite = _suite(tmp_path / "s.yaml", clip_folder)
    with pytest.raises(ConfigError, match="segmentation.kernel_s"):
        load_suite(suite, ["segmentation.kernel_s=0.3"])
    with pytest.raises(ConfigError, match="segmentation.windows"):
        load_suite(suite, ["segmentation.windows=[]"])
    with pytest.raises(ConfigError, match="datasets.0.concat.clips_per_track"):
        load_suite(suite, ["datasets.0.concat.clips_per_track=1"])
    with pytest.raises(ConfigError, match="datasets.0.level"):
        load_suite(suite, ["datasets.0.kind=salami", "datasets.0.level=middle"])
