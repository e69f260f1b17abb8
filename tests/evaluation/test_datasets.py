import numpy as np
import pytest

from ssl_music_eval.datasets import (encode_labels, load_csv_manifest, load_folder_per_class, load_giantsteps,
                                 load_synthetic, load_tag_csv, make_splits, normalise_key)
from ssl_music.errors import SSLMusicError


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0")
    return path


def test_csv_manifest_labels_tags_split_and_missing(tmp_path):
    _touch(tmp_path / "a.wav"), _touch(tmp_path / "sub" / "b.wav")
    (tmp_path / "m.csv").write_text("path,genre,mood,split,track_id\n"
                                    "a.wav,rock,happy|calm,train,T1\n"
                                    "sub/b.wav,jazz,,test,\n"
                                    "gone.wav,rock,sad,train,T3\n")
    ds = load_csv_manifest(tmp_path / "m.csv", ["genre", "mood"])
    assert ds.tasks == {"genre": "multiclass", "mood": "multilabel"}
    assert [it.labels for it in ds.items] == [{"genre": "rock", "mood": ["happy", "calm"]},
                                              {"genre": "jazz", "mood": []}]
    assert [it.track_id for it in ds.items] == ["T1", "b"] and [it.split for it in ds.items] == ["train", "test"]
    assert ds.missing == [{"path": str(tmp_path / "gone.wav"), "reason": "audio file not found"}]


def test_missing_label_column_names_column_and_file(tmp_path):
    (tmp_path / "m.csv").write_text("path,genre\nx.wav,rock\n")
    with pytest.raises(SSLMusicError) as exc:
        load_csv_manifest(tmp_path / "m.csv", ["mood"])
    assert "'mood'" in str(exc.value) and "m.csv" in str(exc.value)
    with pytest.raises(SSLMusicError) as exc:
        load_tag_csv(tmp_path / "m.csv", tag_cols=["guitar"])
    assert "'guitar'" in str(exc.value) and "m.csv" in str(exc.value)


def test_folder_per_class(tmp_path):
    for g in ("blues", "rock"):
        for i in range(2):
            _touch(tmp_path / "genres" / g / f"{g}.{i:05d}.wav")
    _touch(tmp_path / "genres" / "rock" / "notes.txt")
    ds = load_folder_per_class(tmp_path / "genres")
    assert [(it.track_id, it.labels["genre"]) for it in ds.items] == [
        ("blues.00000", "blues"), ("blues.00001", "blues"), ("rock.00000", "rock"), ("rock.00001", "rock")]


def test_magnatagatune_style_tag_columns(tmp_path):
    _touch(tmp_path / "0" / "a.mp3"), _touch(tmp_path / "1" / "b.mp3"), _touch(tmp_path / "1" / "c.mp3")
    (tmp_path / "annotations_final.csv").write_text(
        "clip_id\tguitar\tpiano\tvocal\tmp3_path\n"
        "2\t1\t0\t1\t0/a.mp3\n5\t1\t1\t0\t1/b.mp3\n7\t1\t0\t0\t1/c.mp3\n9\t0\t0\t1\t9/z.mp3\n")
    ds = load_tag_csv(tmp_path / "annotations_final.csv")
    assert [(it.track_id, it.labels["tags"]) for it in ds.items] == [
        ("2", ["guitar", "vocal"]), ("5", ["guitar", "piano"]), ("7", ["guitar"])]
    assert len(ds.missing) == 1 and ds.tasks == {"tags": "multilabel"}
    top = load_tag_csv(tmp_path / "annotations_final.csv", top_n=2)  # guitar (3), vocal (2)
    assert [it.labels["tags"] for it in top.items] == [["guitar", "vocal"], ["guitar"], ["guitar"]]


def test_giantsteps_bpm_and_key_files(tmp_path):
    audio, ann = tmp_path / "audio", tmp_path / "annotations"
    _touch(audio / "100.LOFI.mp3"), _touch(audio / "200.LOFI.mp3")
    (ann / "tempo").mkdir(parents=True), (ann / "key").mkdir(parents=True)
    (ann / "tempo" / "100.LOFI.bpm").write_text("128\n")
    (ann / "key" / "100.LOFI.key").write_text("D# minor")
    (ann / "key" / "200.LOFI.key").write_text("A major\n")
    (ann / "tempo" / "300.LOFI.bpm").write_text("90")
    ds = load_giantsteps(audio, ann)
    assert ds.tasks == {"tempo": "tempo", "key": "multiclass"}
    assert [(it.track_id, it.labels) for it in ds.items] == [
        ("100", {"tempo": "128", "key": "Eb:min"}), ("200", {"key": "A:maj"})]
    assert [m["reason"] for m in ds.missing] == ["audio file not found"]
    assert len(ds.labelled("tempo")) == 1


def test_normalise_key():
    assert normalise_key("C:maj") == "C:maj" and normalise_key("bb minor") == "Bb:min"
    with pytest.raises(SSLMusicError, match="H major"):
        normalise_key("H major")


def test_synthetic_labels(tmp_path):
    _touch(tmp_path / "audio" / "t0.wav")
    (tmp_path / "labels.csv").write_text("path,track_id,tempo,tempo_class,key,timbre,style,drums\n"
                                         "audio/t0.wav,t0,120.0,fast,A:min,saw,rock,1\n")
    ds = load_synthetic(tmp_path / "labels.csv")
    assert ds.items[0].labels == {"tempo": "120.0", "tempo_class": "fast", "key": "A:min", "timbre": "saw",
                                  "style": "rock", "drums": "1"}
    assert ds.tasks["tempo"] == "tempo" and ds.tasks["key"] == "multiclass"


def test_make_splits_stratified_fixed_and_errors():
    labels = ["a"] * 10 + ["b"] * 5
    folds = make_splits(labels, n_folds=5, seed=0)
    assert len(folds) == 5
    assert sorted(np.concatenate([f["test"] for f in folds]).tolist()) == list(range(15))
    for f in folds:
        assert sorted([labels[i] for i in f["test"]]) == ["a", "a", "b"] and f["val"] is None
        assert not set(f["train"]) & set(f["test"])
    with pytest.raises(SSLMusicError, match=r"'c'.*genre|genre.*'c'"):
        make_splits(labels + ["c"] * 4, n_folds=5, task="genre")
    fixed = make_splits(labels, fixed=["train"] * 10 + ["valid"] * 2 + ["test"] * 3)
    assert len(fixed) == 1 and fixed[0]["val"].tolist() == [10, 11] and fixed[0]["test"].tolist() == [12, 13, 14]
    with pytest.raises(SSLMusicError, match="test"):
        make_splits(labels, fixed=["train"] * 15)
    ml = make_splits([["x"], ["y"], []] * 5, n_folds=3)
    assert sorted(np.concatenate([f["test"] for f in ml]).tolist()) == list(range(15))


def test_encode_labels():
    y, classes = encode_labels(["b", "a", "b"], "multiclass")
    assert y.tolist() == [1, 0, 1] and classes == ["a", "b"]
    Y, tags = encode_labels([["x"], [], ["y", "x"]], "multilabel")
    assert Y.tolist() == [[1, 0], [0, 0], [1, 1]] and tags == ["x", "y"]


def test_where_filter_matches_the_columns_type():
    # a 1/0 column asked for with true/false (or yes/no, 1.0) selects the same clips as 1/0 itself
    from ssl_music_eval.datasets import Item, matches_where

    items = [Item(f"{i}.wav", str(i), {"drums": v, "style": s}) for i, (v, s) in
             enumerate([("1", "Rock"), ("0", "pop"), ("1", "1"), ("true", "pop")])]
    pick = lambda where: [it.track_id for it in items if matches_where(it, where)]  # noqa: E731
    assert pick("drums=true") == pick("drums=1") == pick("drums=yes") == pick("drums=1.0") == ["0", "2", "3"]
    assert pick("drums=false") == pick("drums=0") == ["1"]
    assert pick("style=rock") == ["0"] and pick("style=1") == ["2"] and pick("style=true") == ["2"]
