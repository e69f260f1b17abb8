"""Does pretraining learn? A short CPU run must beat its own random initialisation on a synthetic label."""
import pytest

from ssl_music.config import CONFIG_DIR, load_config
from ssl_music_eval.monitor import KnnMonitor, monitor_callbacks
from ssl_music.train import pretrain

pytestmark = pytest.mark.slow  # minutes on 2 cores: `make test-slow`

# Measured on the 2-core dev machine (seeded run, see the closing note of the pretraining issue):
# best k-NN gain over random init = +0.25 (style); the bar sits well below that, not at zero.
MIN_GAIN = 0.10


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    """48 training tracks (12 would put one track several times in a batch: false negatives) + 40 to monitor."""
    from ssl_music.data.shards import build_shards
    from ssl_music.data.synth import generate_corpus

    train = generate_corpus(tmp_path_factory.mktemp("train"), n_tracks=48, seconds=20.0, seed=10)
    shards = tmp_path_factory.mktemp("shards")
    build_shards(train, shards, shard_size_mb=2, workers=1, progress=False)
    return shards, generate_corpus(tmp_path_factory.mktemp("monitor"), n_tracks=40, seconds=12.0, seed=11)


def test_short_contrastive_pretraining_beats_random_init_on_knn(corpora, tmp_path):
    shards, monitor_labels = corpora
    overrides = [
        f"data.shards={shards}", f"trainer.root_dir={tmp_path / 'run'}", f"monitor.labels_csv={monitor_labels}",
        "objectives.triplet.weight=0", "objectives.tempo.weight=0", "augment.preset=stretch_pitch",
        "data.batch_size=16", "data.num_workers=0", "data.batches_per_epoch=50", "trainer.max_steps=150",
        "monitor.every_n_steps=150", "monitor.max_items=40", "trainer.progress_bar=false", "trainer.logger=none",
        "trainer.ckpt_every_n_steps=1000",
    ]
    cfg = load_config(CONFIG_DIR / "pretrain" / "demo.yaml", overrides)
    trainer = pretrain(cfg, callbacks=monitor_callbacks(cfg))  # as `ssl-music pretrain` wires it
    monitor = next(c for c in trainer.callbacks if isinstance(c, KnnMonitor))
    first, last = monitor.history[0], monitor.history[-1]
    assert first["step"] == 0 and last["step"] == 150
    gains = {label: last[label] - first[label] for label in cfg.monitor.labels}
    assert max(gains.values()) >= MIN_GAIN, gains
