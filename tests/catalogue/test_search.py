"""search: queries by track id, range and audio; own track left out; foreign models refused; tempo ratio; the page."""
from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ssl_music.catalogue.search import parse_query, resolve_query, search, translate_query
from ssl_music.catalogue.store import open_index
from ssl_music.cli import main as cli
from ssl_music.errors import SSLMusicError


def _brute_force(cat, q: np.ndarray, exclude: int | None) -> list[tuple[str, float]]:
    c = np.asarray(cat.crop_vectors, np.float64)
    sims = c @ q / np.linalg.norm(c, axis=1) / np.linalg.norm(q)
    track = np.asarray(cat.crops.column("track"))
    best = {}
    for s, t in zip(sims, track):
        if t != exclude:
            best[t] = max(best.get(t, -2), s)
    ids = cat.tracks.column("track_id").to_pylist()
    return [(ids[t], s) for t, s in sorted(best.items(), key=lambda kv: -kv[1])]


def test_a_track_query_finds_the_best_crops_of_other_tracks(built_index):
    cat = open_index(built_index)
    tid = cat.tracks.column("track_id")[0].as_py()
    res = search(cat, resolve_query(cat, tid), k=5)
    ref = _brute_force(cat, np.asarray(cat.track_vectors[0], np.float64), exclude=0)[:5]
    assert [h.track_id for h in res.hits] == [t for t, _ in ref] and tid not in [h.track_id for h in res.hits]
    np.testing.assert_allclose([h.similarity for h in res.hits], [s for _, s in ref], atol=1e-5)
    for h in res.hits:  # the start second is the crop that reached the track's best similarity
        assert h.start_s == h.source_start_s and float(h.start_s).is_integer()
    own = search(cat, resolve_query(cat, tid), k=3, include_self=True, level="track").hits[0]
    assert own.track_id == tid and own.similarity == pytest.approx(1.0, abs=1e-6)


def test_a_range_query_is_the_mean_of_its_crops(built_index):
    cat = open_index(built_index)
    tid = cat.tracks.column("track_id")[2].as_py()
    q = resolve_query(cat, f"{tid}@3-6.5")
    rows = np.flatnonzero(np.asarray(cat.crops.column("track")) == 2)[3:7]   # crops 3, 4, 5, 6 overlap 3-6.5 s
    np.testing.assert_allclose(q.vector, np.asarray(cat.crop_vectors[rows]).mean(axis=0), rtol=1e-6)
    assert parse_query("song.wav@30-45") == ("song.wav", 30.0, 45.0) and parse_query("a@b") == ("a@b", 0.0, None)
    with pytest.raises(SSLMusicError, match="must end after it starts"):
        parse_query(f"{tid}@9-3")
    with pytest.raises(SSLMusicError, match="no crop of this track overlaps 40.0-50.0 s"):
        resolve_query(cat, f"{tid}@40-50")


def test_an_audio_query_is_embedded_and_leaves_its_own_track_out(built_index, trained_checkpoint, capsys):
    from ssl_music.api import load_encoder

    cat = open_index(built_index)
    path = cat.tracks.column("path")[4].as_py()
    q = resolve_query(cat, path, load_encoder(trained_checkpoint))
    assert q.track_id == cat.tracks.column("track_id")[4].as_py()
    np.testing.assert_allclose(q.vector, cat.track_vectors[4], rtol=1e-5, atol=1e-6)
    assert cli(["search", str(built_index), f"{path}@2-5", "-k", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split() == ["rank", "track", "start", "s", "similarity"] and len(out) == 5
    assert q.track_id not in "\n".join(out[2:])


def test_a_model_other_than_the_index_s_is_refused(built_index, tmp_path, capsys):
    from tests.evaluation.fakes import tiny_checkpoint

    cat = open_index(built_index)
    path = cat.tracks.column("path")[0].as_py()
    other = tiny_checkpoint(tmp_path / "other.ckpt")
    assert cli(["search", str(built_index), path, "--checkpoint", other]) == 2
    err = capsys.readouterr().err
    assert f"{built_index} was built with checkpoint" in err and "not comparable" in err


@pytest.fixture(scope="module")
def with_translator(trained_checkpoint, tmp_path_factory):
    """A copy of the index's checkpoint (the same bytes: the same identity) with a tempo translator beside it:
    untrained but not the identity (random last layer), enough to see the ratio reach the search."""
    import shutil

    import torch

    from ssl_music.api import load_encoder
    from ssl_music.translation import TempoTranslator, TranslatorConfig, save_translator

    path = tmp_path_factory.mktemp("translator") / "last.ckpt"
    shutil.copy(trained_checkpoint, path)
    model = load_encoder(path)
    torch.manual_seed(0)
    t = TempoTranslator(model.embed_dim, hidden=16)
    torch.nn.init.normal_(t.net[-1].weight, std=0.5)
    save_translator(t, path, model.encoder, TranslatorConfig(), summary={})
    return path


def test_the_tempo_ratio_reaches_the_search(built_index, with_translator, capsys):
    from ssl_music.api import load_encoder

    cat = open_index(built_index)
    model = load_encoder(with_translator)
    assert model.identity == cat.identity
    tid = cat.tracks.column("track_id")[1].as_py()
    plain = search(cat, resolve_query(cat, tid), k=11)
    moved = translate_query(resolve_query(cat, tid), model, 1.1)
    np.testing.assert_allclose(moved.vector, model.translate_tempo(np.asarray(cat.track_vectors[1]), 1.1), rtol=1e-6)
    assert not np.allclose(moved.vector, cat.track_vectors[1])
    faster = search(cat, moved, k=11)
    ref = _brute_force(cat, np.asarray(moved.vector, np.float64), exclude=1)
    assert [h.track_id for h in faster.hits] == [t for t, _ in ref[:11]]
    assert [h.similarity for h in faster.hits] != [h.similarity for h in plain.hits]
    assert cli(["search", str(built_index), tid, "-k", "2", "--tempo-ratio", "1.1",
                "--checkpoint", str(with_translator)]) == 0
    assert f"query {tid}  (tempo x1.1)" in capsys.readouterr().out


def test_a_tempo_ratio_without_a_translator_says_why(built_index, trained_checkpoint, capsys):
    tid = open_index(built_index).tracks.column("track_id")[0].as_py()
    assert cli(["search", str(built_index), tid, "--tempo-ratio", "1.1"]) == 2
    assert "has no tempo translator" in capsys.readouterr().err


def _wav(src: str) -> tuple[np.ndarray, int]:
    x, sr = sf.read(io.BytesIO(base64.b64decode(src.split(",", 1)[1])), dtype="float32")
    return x, sr


def test_the_page_holds_the_matching_excerpts(built_index, tmp_path, capsys):
    from ssl_music.data.audio import load_audio

    cat = open_index(built_index)
    tid = cat.tracks.column("track_id")[5].as_py()
    page = tmp_path / "p.html"
    assert cli(["search", str(built_index), f"{tid}@4-7", "-k", "3", "--html", str(page)]) == 0
    text = page.read_text()
    assert "http://" not in text and "https://" not in text          # self-contained
    assert f"ssl-music search {built_index} {tid}@4-7 -k 3 --html {page}" in text
    players = re.findall(r'<audio controls preload="auto" data-start-s="([\d.]+)" data-seconds="([\d.]+)"'
                         r'(?: data-match-s="([\d.]+)")? src="([^"]+)"', text)
    assert len(players) == 4 and len(re.findall(r'src="data:image/png;base64,', text)) == 4
    # the query plays 4-7 s of its track, each neighbour its best crop with 3 s either side (within its 20 s
    # file): the very samples of the file
    lines = capsys.readouterr().out.splitlines()[2:5]
    hits = [(ln.split()[1], float(ln.split()[2])) for ln in lines]
    wanted = [(tid, 4.0, 3.0)] + [(t, max(0.0, s - 3), min(20.0, s + 4) - max(0.0, s - 3)) for t, s in hits]
    assert [float(m) for _, _, m, _ in players[1:]] == [s for _, s in hits]
    spans = re.findall(r'alt="spectrogram, seconds ([\d.]+) to ([\d.]+)"', text)
    assert [(float(a), float(b)) for a, b in spans] == [(w[1], w[1] + w[2]) for w in wanted]
    paths = dict(zip(cat.tracks.column("track_id").to_pylist(), cat.tracks.column("path").to_pylist()))
    for (start, seconds, _, src), (track, want_start, want_s) in zip(players, wanted):
        x, sr = _wav(src)
        assert float(start) == want_start and float(seconds) == pytest.approx(want_s) and len(x) == int(want_s * sr)
        whole = load_audio(paths[track], sr)
        np.testing.assert_allclose(x, whole[int(want_start * sr):int((want_start + want_s) * sr)], atol=1 / 32767)


# ------------------------------------------------------------------ paths, time ranges, what a query imports
def _music(corpus_audio, folder, n=4):
    import shutil

    folder.mkdir(parents=True)
    for f in sorted(corpus_audio.glob("*.flac"))[:n]:
        shutil.copy(f, folder / f.name)
    return folder


def test_an_audio_query_leaves_its_own_track_out_from_any_folder(small_ckpt, corpus_audio, tmp_path, monkeypatch,
                                                                 capsys):
    from ssl_music.catalogue.build import build_index

    import shutil

    _music(corpus_audio, tmp_path / "music")
    shutil.copy(small_ckpt, tmp_path / "m.ckpt")
    monkeypatch.chdir(tmp_path)
    build_index("music", "m.ckpt", "idx")                      # relative paths, as a user types them
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    name = sorted(p.name for p in (tmp_path / "music").iterdir())[1]
    assert cli(["search", "../idx", f"../music/{name}", "-k", "3", "--html", "page.html"]) == 0
    out = capsys.readouterr()
    table = out.out.split("-> ")[0].split("\n", 2)[2]
    assert len(table.splitlines()) == 3 and Path(name).stem not in table and "warning" not in out.err
    page = (elsewhere / "page.html").read_text()
    assert 'class="err"' not in page and page.count("<audio") == 4
    cat = open_index(tmp_path / "idx")
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in cat.tracks.column("path").to_pylist())


def test_an_index_moved_with_its_music_still_plays_or_says_what_to_do(small_ckpt, corpus_audio, tmp_path, capsys):
    import shutil

    from ssl_music.catalogue.build import build_index

    _music(corpus_audio, tmp_path / "a" / "music")
    build_index(tmp_path / "a" / "music", small_ckpt, tmp_path / "a" / "idx")
    shutil.move(tmp_path / "a", tmp_path / "b")                 # the index and its music, moved together
    cat = open_index(tmp_path / "b" / "idx")
    tid, path = cat.tracks.column("track_id")[0].as_py(), cat.tracks.column("path")[0].as_py()
    assert cli(["search", str(tmp_path / "b" / "idx"), tid, "-k", "2", "--html", str(tmp_path / "p.html")]) == 0
    assert 'class="err"' not in (tmp_path / "p.html").read_text() and "warning" not in capsys.readouterr().err
    moved_file = str(tmp_path / "b" / "music" / Path(path).name)
    res = search(cat, resolve_query(cat, moved_file, __import__("ssl_music").load_encoder(small_ckpt)), k=3)
    assert tid not in [h.track_id for h in res.hits] and all(Path(h.source).is_file() for h in res.hits)
    shutil.move(tmp_path / "b" / "music", tmp_path / "elsewhere")   # the music alone moved: say what to do
    assert cli(["search", str(tmp_path / "b" / "idx"), tid, "-k", "2"]) == 0
    err = capsys.readouterr().err
    assert f"is not where it was built from ({tmp_path / 'a' / 'music'}): put it back there or at ../music" in err
    assert f"ssl-music index build NEW_FOLDER --out {tmp_path / 'b' / 'idx'}" in err


@pytest.mark.parametrize("text,want", [
    ("song.ogg@30", ("song.ogg", 30.0, None)),
    ("song.ogg@30-45", ("song.ogg", 30.0, 45.0)),
    ("song.ogg@1:30-2:00", ("song.ogg", 90.0, 120.0)),
    ("id@0:05.5-12", ("id", 5.5, 12.0)),
    ("a@b", ("a@b", 0.0, None)),
])
def test_time_ranges_take_a_start_alone_and_minutes(text, want):
    assert parse_query(text) == want


def test_a_file_or_track_with_a_start_alone_is_found(built_index, trained_checkpoint, capsys):
    cat = open_index(built_index)
    tid, path = cat.tracks.column("track_id")[1].as_py(), cat.tracks.column("path")[1].as_py()
    q = resolve_query(cat, f"{tid}@0:15")
    rows = np.flatnonzero(np.asarray(cat.crops.column("track")) == 1)[15:]   # crops 15..19 of a 20 s track
    np.testing.assert_allclose(q.vector, np.asarray(cat.crop_vectors[rows]).mean(axis=0), rtol=1e-6)
    for query in (f"{path}@15", f"{path}@0:15-0:20"):
        assert cli(["search", str(built_index), query, "-k", "2"]) == 0, capsys.readouterr().err
        assert tid not in capsys.readouterr().out.split("\n", 2)[2]


def test_a_track_id_query_imports_neither_torch_nor_scipy(built_index, tmp_path):
    import subprocess
    import sys

    tid = open_index(built_index).tracks.column("track_id")[0].as_py()
    code = ("import sys; from ssl_music.cli import main; rc = main(['search', sys.argv[1], sys.argv[2], '-k', '2']); "
            "print(sorted(m for m in ('torch', 'scipy') if m in sys.modules)); sys.exit(rc)")
    res = subprocess.run([sys.executable, "-c", code, str(built_index), f"{tid}@2-5"], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "[]", res.stdout


def test_a_checkpoint_given_with_a_track_id_is_checked(built_index, small_ckpt, capsys):
    tid = open_index(built_index).tracks.column("track_id")[0].as_py()
    assert cli(["search", str(built_index), tid, "--checkpoint", str(small_ckpt)]) == 2
    assert "its embeddings are not comparable" in capsys.readouterr().err


def test_a_hit_whose_file_is_gone_is_said_with_what_to_do(small_ckpt, corpus_audio, tmp_path, capsys):
    from ssl_music.catalogue.build import build_index

    music = _music(corpus_audio, tmp_path / "music", 3)
    build_index(music, small_ckpt, tmp_path / "idx")
    files = sorted(music.iterdir())
    files[2].unlink()
    assert cli(["search", str(tmp_path / "idx"), files[0].stem, "-k", "2"]) == 0
    err = capsys.readouterr().err
    assert f"1 hit(s) are files gone since the index was built ({files[2]})" in err
    assert f"`ssl-music index build {music} --out {tmp_path / 'idx'}" in err
