import io

import numpy as np
import pytest
import soundfile as sf
from omegaconf import OmegaConf

from ssl_music.config import schema
from ssl_music.data.audio import decode_bytes
from ssl_music.data.stream import segment_reader
from ssl_music.data.crops import read_crops
from ssl_music.data.views import ViewSampler, source_lengths
from ssl_music.objectives import view_samplers
from ssl_music.objectives.contrastive import contrastive_starts
from ssl_music.objectives.tempo import tempo_starts
from ssl_music.objectives.triplet import triplet_starts

SR = 16000


def _flac(x, sr=SR):
    buf = io.BytesIO()
    sf.write(buf, x, sr, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def _cfg(**kw):
    cfg = schema().data
    cfg.merge_with(OmegaConf.from_dotlist([f"{k}={v}" for k, v in kw.items()]))
    return cfg


class RecordingReader:
    """read(start, frames) over an in-memory ramp, remembering every start it was asked for."""

    def __init__(self, n):
        self.x = np.arange(n, dtype=np.float32)
        self.starts = []

    def __call__(self, start, frames):
        self.starts.append(start)
        return self.x[start:start + frames]


def test_seek_decoded_crop_equals_slice_of_full_decode():
    rng = np.random.default_rng(0)
    x = (0.3 * rng.standard_normal(3 * SR)).astype(np.float32)
    b = _flac(x)
    full, sr = decode_bytes(b)
    assert sr == SR and full.shape == (3 * SR,)
    n_frames, file_sr, read = segment_reader(b, "test")
    assert (n_frames, file_sr) == (3 * SR, SR)
    for start, frames in [(0, 4000), (12345, 8000), (3 * SR - 100, 100), (7, 1)]:
        crop = read(start, frames)
        np.testing.assert_array_equal(crop, full[start:start + frames])


@pytest.mark.parametrize("n_frames", [SR, 5 * SR, 60 * SR])
def test_contrastive_starts_within_max_gap(n_frames):
    rng = np.random.default_rng(1)
    length, gap = 3 * SR // 4, 2 * SR
    spreads = []
    for _ in range(300):
        s = contrastive_starts(n_frames, length, 4, gap, rng)
        assert s.min() >= 0 and s.max() <= max(0, n_frames - length)
        assert s.max() - s.min() <= gap
        spreads.append(s.max() - s.min())
    if n_frames > 3 * gap:
        assert max(spreads) > gap // 2   # the window is used, not collapsed to one point


@pytest.mark.parametrize("n_frames", [30 * SR, 15 * SR, 60 * SR])
def test_triplet_starts_respect_distances(n_frames):
    rng = np.random.default_rng(2)
    length, pos, nmin, nmax = SR, 4 * SR, 10 * SR, 40 * SR
    hi = n_frames - length
    anchors = []
    for _ in range(500):
        (a, p, n), fallback = triplet_starts(n_frames, length, pos, nmin, nmax, rng)
        assert not fallback
        assert 0 <= min(a, p, n) and max(a, p, n) <= hi
        assert abs(p - a) <= pos
        assert nmin <= abs(n - a) <= nmax
        anchors.append(a)
    assert max(anchors) - min(anchors) > hi // 2   # anchors spread over the segment


def test_triplet_short_segment_falls_back_to_farthest_position():
    rng = np.random.default_rng(3)
    n_frames, length = 8 * SR, SR   # last start 7 s < neg_min 10 s
    for _ in range(50):
        (a, p, n), fallback = triplet_starts(n_frames, length, 4 * SR, 10 * SR, 40 * SR, rng)
        assert fallback
        assert {a, n} == {0, n_frames - length}
        assert abs(p - a) <= 4 * SR


def test_tempo_starts_anywhere_in_segment():
    rng = np.random.default_rng(4)
    starts = np.concatenate([tempo_starts(20 * SR, SR, rng) for _ in range(200)])
    assert starts.min() >= 0 and starts.max() <= 19 * SR
    assert starts.max() - starts.min() > 15 * SR


def test_read_crops_zero_pads_short_segment():
    out = read_crops(RecordingReader(100), [0], 160)
    assert out.shape == (1, 160)
    np.testing.assert_array_equal(out[0, :100], np.arange(100))
    assert not out[0, 100:].any()


def test_view_sampler_shapes_and_seconds_to_frames():
    cfg = _cfg(**{"crop_s": 0.5, "contrastive.n_views": 3, "contrastive.max_gap_s": 1.0,
                  "triplet.pos_max_s": 0.5, "triplet.neg_min_s": 2.0, "triplet.neg_max_s": 4.0})
    src = {"contrastive": 9000, "triplet": 9000, "tempo": 10000}
    sampler = ViewSampler(cfg, view_samplers(["contrastive", "triplet", "tempo"]), src)
    rng = np.random.default_rng(5)
    for _ in range(30):
        reader = RecordingReader(10 * SR)
        out = sampler("t1", 10 * SR, reader, rng)
        assert out["track_id"] == "t1"
        assert out["contrastive"].shape == (3, 9000) and out["contrastive"].dtype == np.float32
        assert out["triplet"].shape == (3, 9000)
        assert out["tempo"].shape == (2, 10000)
        c, (a, p, n) = reader.starts[:3], reader.starts[3:6]
        assert max(c) - min(c) <= 1.0 * SR                    # seconds in config -> frames here
        assert abs(p - a) <= 0.5 * SR and 2.0 * SR <= abs(n - a) <= 4.0 * SR
        # crops are what was read at those starts (the ramp value at index 0 is the start)
        assert out["triplet"][2, 0] == n


def test_view_sampler_only_requested_views():
    cfg = _cfg(crop_s=0.5)
    sampler = ViewSampler(cfg, view_samplers(["tempo"]), {"tempo": 8000})
    out = sampler("x", 4 * SR, RecordingReader(4 * SR), np.random.default_rng(0))
    assert set(out) == {"track_id", "tempo"}
    with pytest.raises(ValueError, match="views"):
        ViewSampler(cfg, view_samplers(["bogus"]), {})


def test_other_track_negative_comes_from_another_track():
    cfg = _cfg(**{"crop_s": 0.25, "triplet.negative": "other_track"})
    sampler = ViewSampler(cfg, view_samplers(["triplet"]), {"triplet": 4000})
    rng = np.random.default_rng(6)
    ramp_a = RecordingReader(20 * SR)
    first = sampler("A", 20 * SR, ramp_a, rng)["triplet"]
    # first sample of a worker: no other track buffered yet -> same-track negative (read from A)
    assert len(ramp_a.starts) == 3
    ramp_b = RecordingReader(20 * SR)
    ramp_b.x = -ramp_b.x - 1.0          # B's samples are negative, A's are >= 0
    second = sampler("B", 20 * SR, ramp_b, rng)["triplet"]
    assert len(ramp_b.starts) == 2       # anchor and positive only
    np.testing.assert_array_equal(second[2], first[0])   # A's anchor, not anything of B's
    assert (second[:2] < 0).all()
    third = sampler("B", 20 * SR, ramp_b, rng)["triplet"]
    assert (third[2] >= 0).all()         # never B's own crop, though B's anchor is buffered too


class _Aug:
    backend = "cpu"

    def source_factor(self, view):
        return {"contrastive": 1.25, "triplet": 1.25, "tempo": 1.5}[view]  # chain views share a factor


def test_source_lengths_follow_contract():
    cfg = _cfg(crop_s=3.0)
    assert source_lengths(cfg, ["contrastive", "triplet", "tempo"]) == \
        {"contrastive": 48000, "triplet": 48000, "tempo": 48000}
    assert source_lengths(cfg, ["contrastive", "triplet", "tempo"], _Aug()) == \
        {"contrastive": 60000, "triplet": 60000, "tempo": 72000}


def test_view_samplers_come_in_registry_order_whatever_the_callers_order():
    from ssl_music.objectives import OBJECTIVES

    assert list(view_samplers(["tempo", "contrastive"])) == [n for n in OBJECTIVES if n in ("tempo", "contrastive")]
    assert view_samplers(["tempo"])["tempo"] is OBJECTIVES["tempo"].sampler
