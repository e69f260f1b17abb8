"""The methods of issue #34 through pretraining on tiny shards: each runs beside the triplet and tempo
objectives; resume restores the queue and the EMA target bit for bit; the EMA moves once per optimizer step
under gradient accumulation; export and load_encoder leave the training state out; combinations that make
no sense are refused naming the key; `pretrain --check` validates BYOL-A's config."""
import pytest
import pytorch_lightning as pl
import torch

import ssl_music
from ssl_music.checkpoint import WEIGHTS_FILE
from ssl_music.cli import main as cli
from ssl_music.config import CONFIG_DIR, ConfigError, load_config
from ssl_music.train import pretrain
from tests.test_train import Crash, CrashAt, tiny_overrides

BYOL = {"objectives.byol.hidden": 32, "objectives.byol.out_dim": 16}
METHODS = {
    # NT-Xent with a queue, beside triplet (sharing the projector) and tempo
    "queue": ("multitask.yaml", {"objectives.contrastive.queue": 20}),
    "byol": ("multitask.yaml", {"objectives.contrastive.weight": 0, "objectives.byol.weight": 1.0, **BYOL}),
    "vicreg": ("multitask.yaml", {"objectives.contrastive.weight": 0, "objectives.vicreg.weight": 1.0,
                                  "objectives.vicreg.hidden": 32, "objectives.vicreg.out_dim": 32}),
    # BYOL-A's shipped recipe: spectral backend, mixup and random-resize crop
    "byol_a": ("byol_a.yaml", BYOL),
}


def _cfg(method, shards, root, **extra):
    name, over = METHODS[method]
    return load_config(CONFIG_DIR / "pretrain" / name, tiny_overrides(shards, root, **{**over, **extra}))


class StatesAtStart(pl.Callback):
    """The module's objective states as the resumed run starts training (after Lightning restored them)."""

    def on_train_start(self, trainer, module):
        self.states = {k: v.detach().clone() for k, v in module.states.state_dict().items()}
        self.step = trainer.global_step


def _saved_states(path):
    state = torch.load(path, map_location="cpu", weights_only=False)["state_dict"]
    return {k[len("states."):]: v for k, v in state.items() if k.startswith("states.")}


SLOW = pytest.mark.slow   # ~30 s each on 2 shared cores; byol_a (state, spectral transforms, export) stays fast


@pytest.mark.parametrize("method", [pytest.param(m, marks=SLOW) if m != "byol_a" else m for m in METHODS])
def test_resume_restores_the_methods_state_bit_for_bit_and_export_drops_it(method, tiny_shards, tmp_path):
    root = tmp_path / "run"
    cfg = _cfg(method, tiny_shards, root)
    with pytest.raises(Crash):
        pretrain(cfg, callbacks=[CrashAt(4)])
    saved = _saved_states(root / "checkpoints" / "last.ckpt")
    if method == "vicreg":
        assert saved == {}          # nothing but encoder and heads to keep
    else:
        assert saved, "the method's state is not in the checkpoint"
    if method == "queue":
        assert int(saved["contrastive.count"]) == 20                  # 3 steps x 4 tracks x 2 views, capped
        assert saved["contrastive.keys"].abs().sum() > 0
    if method.startswith("byol"):
        assert int(saved["byol.updates"]) == 3                         # once per step up to the step-3 checkpoint

    start = StatesAtStart()
    trainer = pretrain(cfg, callbacks=[start])
    assert start.step == 3 and trainer.global_step == 6
    assert start.states.keys() == saved.keys()
    for k, v in saved.items():
        assert torch.equal(start.states[k], v), k                       # bit for bit

    last = root / "checkpoints" / "last.ckpt"
    out = tmp_path / "export"
    assert cli(["export", str(last), "--out", str(out)]) == 0
    from safetensors.torch import load_file

    exported = load_file(out / WEIGHTS_FILE)
    assert not [k for k in exported if k.startswith("states.") or ".states." in k]
    assert not [k for k in exported if k.startswith(("heads.byol", "heads.expander"))]   # training-only heads
    for source in (last, out):
        model = ssl_music.load_encoder(source)
        emb = model.embed(torch.randn(16000).numpy() * 0.1, 16000)
        assert emb.shape == (16,)
    import ssl_music.hear as hear   # the HEAR common API on the export

    scene = hear.get_scene_embeddings(0.1 * torch.randn(2, 16000), hear.load_model(str(out)))
    assert scene.shape == (2, 16) and torch.isfinite(scene).all()


@SLOW
def test_ema_moves_once_per_optimizer_step_under_gradient_accumulation(tiny_shards, tmp_path):
    cfg = _cfg("byol", tiny_shards, tmp_path / "run", **{"trainer.accumulate_grad_batches": 2,
                                                          "trainer.max_steps": 3, "trainer.ckpt_every_n_steps": 3})
    trainer = pretrain(cfg)
    assert trainer.global_step == 3
    assert int(_saved_states(tmp_path / "run" / "checkpoints" / "last.ckpt")["byol.updates"]) == 3   # not 6


def test_ema_target_takes_no_optimizer_state(tiny_shards, tmp_path):
    from ssl_music.module import PretrainModule

    cfg = _cfg("byol", tiny_shards, tmp_path / "run")
    module = PretrainModule(ssl_music.config.to_container(cfg))
    opt = module.configure_optimizers()["optimizer"]
    optimised = {id(p) for group in opt.param_groups for p in group["params"]}
    assert not any(id(p) in optimised for p in module.states.parameters())
    assert all(id(p) in optimised for p in module.encoder.parameters() if p.requires_grad)


@pytest.mark.parametrize("overrides, key", [
    (["objectives.byol.weight=1", "objectives.subspaces.weight=1"], "objectives.byol.weight"),
    (["objectives.vicreg.weight=1", "objectives.subspaces.weight=1"], "objectives.vicreg.weight"),
    (["objectives.tempo.weight=1", "augment.backend=spectral", "augment.chain.random_resize_crop.p=1.0"],
     "augment.chain.random_resize_crop"),
    (["objectives.contrastive.queue=-1"], "objectives.contrastive.queue"),
    (["objectives.byol.weight=1", "objectives.byol.tau=1.0"], "objectives.byol.tau"),
    (["objectives.vicreg.weight=1", "data.batch_size=1"], "data.batch_size"),
    (["objectives.byol.weight=1", "augment.chain.mixup.p=1.0"], "augment.chain.mixup"),   # gpu backend
])
def test_combinations_that_make_no_sense_are_refused_naming_the_key(overrides, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(overrides=overrides)


def test_combinations_that_make_sense_load():
    for overrides in (["objectives.byol.weight=1", "objectives.triplet.weight=0.5", "objectives.tempo.weight=1"],
                      ["objectives.vicreg.weight=1", "objectives.tempo.weight=1"],
                      ["objectives.contrastive.queue=64", "objectives.triplet.weight=0.5"],
                      ["objectives.tempo.weight=1", "augment.backend=spectral", "augment.chain.mixup.p=1.0"]):
        load_config(overrides=overrides)


def test_pretrain_check_validates_byol_a(tiny_shards, tmp_path, capsys):
    config = str(CONFIG_DIR / "pretrain" / "byol_a.yaml")
    root = f"trainer.root_dir={tmp_path / 'run'}"
    assert cli(["pretrain", "--config", config, "--check", f"data.shards={tiny_shards}", root]) == 0
    assert "ready to train" in capsys.readouterr().out
    assert cli(["pretrain", "--config", config, "--check", f"data.shards={tiny_shards}", root,
                "objectives.subspaces.weight=1"]) == 2
    assert "objectives.byol.weight" in capsys.readouterr().err


@SLOW
def test_two_process_ddp_runs_every_method_together(tiny_shards, tmp_path):
    # Lightning's DDP on 2 gloo processes with the queue, BYOL's EMA target and VICReg's gathered statistics in
    # one run (beside triplet and tempo): collectives inside the step, states in the checkpoint
    import subprocess

    from tests.test_train import ROOT, _clean_env, _cli

    root = tmp_path / "ddp"
    extra = {"trainer.devices": 2, "trainer.strategy": "ddp", "objectives.contrastive.queue": 200,
             "objectives.byol.weight": 1.0, "objectives.vicreg.weight": 1.0, "objectives.vicreg.hidden": 32,
             "objectives.vicreg.out_dim": 32, **BYOL}
    args = _cli("pretrain", "--config", str(CONFIG_DIR / "pretrain" / "multitask.yaml"),
                *tiny_overrides(tiny_shards, root, **extra))
    out = subprocess.run(args, env=_clean_env(), cwd=ROOT, capture_output=True, text=True, timeout=500)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    saved = _saved_states(root / "checkpoints" / "last.ckpt")
    assert int(saved["byol.updates"]) == 6                   # once per step, not once per rank
    assert int(saved["contrastive.count"]) == 96             # 6 steps x 2 ranks x 4 tracks x 2 views: every rank's keys
