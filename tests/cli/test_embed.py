"""`ssl-music embed`: the progress bar names the file at hand; the output records which part it holds."""
import numpy as np

from ssl_music.cli import main
from tests.evaluation.fakes import tiny_checkpoint, write_tone


def test_embed_shows_file_names_and_records_the_model_s_own_part_name(tmp_path, capsys):
    import ssl_music

    ckpt = tiny_checkpoint(tmp_path / "tiny.ckpt")
    model = ssl_music.load_encoder(ckpt)
    assert model.subspaces == ["all"]
    for name in ("first_song.wav", "second_song.wav"):
        write_tone(tmp_path / name, seconds=2.0)
    out = tmp_path / "e.npz"
    assert main(["embed", "--checkpoint", str(ckpt), str(tmp_path / "first_song.wav"),
                 str(tmp_path / "second_song.wav"), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "second_song.wav" in err and str(model.identity)[:8] not in err
    assert str(np.load(out)["subspace"]) == "all"
