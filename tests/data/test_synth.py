import csv

import librosa
import numpy as np
import pytest
import soundfile as sf
from scipy.signal import butter, sosfilt

from ssl_music.cli import main
from ssl_music.data.synth import (KEYS, LABEL_COLUMNS, STYLES, TEMPO_CLASSES, TIMBRES, click_track,
                                  generate_corpus, render_track, tempo_class)

SR = 16000
HOP = 256
# Krumhansl-Kessler probe-tone profiles, C major / C minor
KK_MAJ = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MIN = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


@pytest.fixture(scope="module")
def tracks():
    return [render_track(i, 10.0, seed=3, sample_rate=SR) for i in range(30)]


def onset_autocorr(x):
    env = librosa.onset.onset_strength(y=x, sr=SR, hop_length=HOP)
    env = env - env.mean()
    ac = np.correlate(env, env, "full")[len(env) - 1:]
    return ac / ac[0]


def ac_at(ac, bpm):
    lag = int(round(60.0 / bpm * SR / HOP))
    return ac[max(lag - 1, 1): lag + 2].max() if lag + 2 < len(ac) else 0.0


def test_onset_autocorrelation_peaks_at_labelled_tempo(tracks):
    fps = SR / HOP
    lo, hi = int(fps * 60 / 300), int(fps * 60 / 40)
    good, at_label, at_wrong = 0, [], []
    for x, lab in tracks:
        ac = onset_autocorr(x)
        best = ac[lo:hi].max()
        r = max(ac_at(ac, lab["tempo"] * m) for m in (0.5, 1, 2))  # the beat or a simple multiple
        good += r >= 0.7 * best
        at_label.append(r / best)
        at_wrong.append(ac_at(ac, lab["tempo"] * 1.37) / best)  # a lag that is no multiple of the beat
    assert good >= 0.9 * len(tracks)
    assert np.mean(at_label) > 2 * np.mean(at_wrong)


def key_profiles():
    prof = np.array([np.roll(KK_MAJ, i) for i in range(12)] + [np.roll(KK_MIN, i) for i in range(12)])
    prof = prof - prof.mean(1, keepdims=True)
    return prof / np.linalg.norm(prof, axis=1, keepdims=True)


def test_chroma_matches_labelled_key(tracks):
    prof, hp = key_profiles(), butter(4, 150, "hp", fs=SR, output="sos")  # drop kick and bass rumble
    hits = 0
    for x, lab in tracks:
        chroma = librosa.feature.chroma_stft(y=sosfilt(hp, x), sr=SR, n_fft=4096, hop_length=1024).mean(1)
        hits += KEYS[int(np.argmax(prof @ (chroma - chroma.mean())))] == lab["key"]
    assert hits >= 0.75 * len(tracks)


def test_timbres_have_distinct_spectral_envelopes():
    # the same chord progression played by each instrument: the harmonic spectra must differ clearly
    cents = {}
    for i in range(200):
        x, lab = render_track(i, 4.0, seed=11, sample_rate=SR)
        if lab["drums"] == 0 and lab["timbre"] not in cents:
            cents[lab["timbre"]] = librosa.feature.spectral_centroid(y=x, sr=SR).mean() / 1000
        if len(cents) == len(TIMBRES):
            break
    assert len(cents) >= 5
    assert np.ptp(list(cents.values())) > 0.5  # kHz between the darkest and brightest instrument


def test_deterministic_by_seed_and_independent_of_count():
    a, la = render_track(5, 3.0, seed=7)
    b, lb = render_track(5, 3.0, seed=7)
    c, _ = render_track(5, 3.0, seed=8)
    assert np.array_equal(a, b) and la == lb
    assert not np.array_equal(a, c)


def test_corpus_files_and_labels(tmp_path):
    labels = generate_corpus(tmp_path / "c", n_tracks=6, seconds=3.0, seed=2)
    rows = list(csv.DictReader(open(labels)))
    assert list(rows[0].keys()) == LABEL_COLUMNS and len(rows) == 6
    for r in rows:
        x, sr = sf.read(tmp_path / "c" / r["path"], dtype="float32")
        assert sr == SR and len(x) == 3 * SR and 0.3 < np.abs(x).max() <= 1.0
        assert 60 <= float(r["tempo"]) <= 200 and r["tempo_class"] == tempo_class(float(r["tempo"]))
        assert r["key"] in KEYS and r["timbre"] in TIMBRES and r["style"] in STYLES and r["drums"] in "01"
        x2, lab = render_track(int(r["track_id"].split("_")[1]), 3.0, seed=2)
        assert np.max(np.abs(x - x2)) < 2 / 32768  # file = render at PCM16 precision
    assert (tmp_path / "c" / "sections.csv").is_file()
    # labels.csv carries the section boundaries: every section start (sections.csv) and the track's end
    starts = {}
    for sec in csv.DictReader(open(tmp_path / "c" / "sections.csv")):
        starts.setdefault(sec["track_id"], []).append(float(sec["start_s"]))
    for r in rows:
        assert [float(t) for t in r["boundaries"].split("|")] == starts[r["track_id"]] + [3.0]
    # parallel generation writes the same corpus
    generate_corpus(tmp_path / "p", n_tracks=6, seconds=3.0, seed=2, workers=2)
    assert (tmp_path / "p" / "labels.csv").read_text() == labels.read_text()


def test_tempo_classes_cover_range():
    assert tempo_class(60.0) == TEMPO_CLASSES[0] and tempo_class(200.0) == TEMPO_CLASSES[-1]
    assert len({tempo_class(b) for b in np.geomspace(60, 199, 50)}) == 6


def test_sections_differ_more_than_within():
    # crops from the same section are closer (mean log-mel: register and texture) than across sections
    within, across = [], []
    for i in range(12):
        x, lab = render_track(i, 32.0, seed=5)
        bar = 240.0 / lab["tempo"]
        bounds = [s for s, _ in lab["sections"]] + [32.0]
        if len(bounds) < 3:
            continue
        feats = []
        for a, b in zip(bounds[:2], bounds[1:3]):
            for off in (0.25, 0.6):
                t = a + off * (b - a)
                seg = x[int(t * SR): int((t + min(2 * bar, (b - a) * 0.3)) * SR)]
                mel = librosa.power_to_db(librosa.feature.melspectrogram(y=seg, sr=SR, n_mels=40))
                feats.append(mel.mean(1))
        d = lambda u, v: np.mean(np.abs(u - v))
        within += [d(feats[0], feats[1]), d(feats[2], feats[3])]
        across += [d(feats[0], feats[2]), d(feats[1], feats[3])]
    assert len(within) >= 8 and np.mean(within) < 0.75 * np.mean(across)


@pytest.mark.parametrize("kind", ["click", "drums"])
def test_click_track_on_beat(kind):
    x = click_track(120, 4.0, SR, kind=kind)
    assert x.shape == (4 * SR,) and x.dtype == np.float32
    ac = onset_autocorr(x)
    fps = SR / HOP
    assert ac_at(ac, 120) >= 0.9 * ac[int(fps * 0.2): int(fps * 1.5)].max()
    with pytest.raises(ValueError):
        click_track(120, 1.0, SR, kind="bogus")


def test_cli(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "o"), "--tracks", "2", "--seconds", "2", "--seed", "1"]) == 0
    assert len(list((tmp_path / "o" / "audio").glob("*.flac"))) == 2
