"""2 gloo ranks x 8 tracks == 1 process x 16 tracks for every method of issue #34 (NT-Xent with its queue,
VICReg, BYOL with its EMA target): the loss, the first two updates (the DDP average of the gradients, then
an SGD step) and the state after them (the queue's keys from every rank, the EMA target), to float tolerance.
The models are BatchNorm-free, so that per-rank batch statistics (which ``trainer.sync_batchnorm`` would
synchronise) do not enter; the objectives' own ``step`` functions run, queue push and EMA move included."""
import pickle
import socket
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ssl_music.objectives import OBJECTIVES
from ssl_music.objectives.byol import EMATarget
from ssl_music.objectives.queue import KeyQueue

pytestmark = pytest.mark.slow   # two spawned processes: ~1-2 minutes on 2 shared cores

WORLD = 2
TRACKS = 16
IN, EMB, OUT = 10, 8, 6
CFG = {
    "contrastive": SimpleNamespace(temperature=0.2, queue=40),
    "vicreg": SimpleNamespace(invariance=25.0, variance=25.0, covariance=1.0),
    "byol": SimpleNamespace(tau=0.9),
}


class Head(torch.nn.Module):
    """BYOL's projector + predictor without BatchNorm; for the other methods only the projector is used."""

    def __init__(self):
        super().__init__()
        self.projector = torch.nn.Linear(EMB, OUT)
        self.predictor = torch.nn.Linear(OUT, OUT)

    def forward(self, e):
        return self.predictor(self.projector(e))


def _build(method):
    torch.manual_seed(0)
    encoder = torch.nn.Linear(IN, EMB)
    encoder.content_dim = EMB
    head = Head()
    if method == "contrastive":
        state = KeyQueue(CFG[method].queue, OUT)
    elif method == "byol":
        state = EMATarget(encoder, head.projector)
    else:
        state = None
    return encoder, head, state


def run_method(method, x, rank, world):
    """Two optimizer steps of ``method`` on this rank's share of ``x`` [steps, TRACKS, 2, IN]."""
    encoder, head, state = _build(method)
    params = list(encoder.parameters()) + list(head.parameters())
    opt = torch.optim.SGD(params, lr=0.5)
    spec = OBJECTIVES[method]
    losses = []
    for batch in x:
        local = batch.chunk(world)[rank]
        e = encoder(local)                                               # [B, 2, EMB]
        step_head = head if method == "byol" else head.projector
        kw = {} if state is None else {"state": state}
        loss = spec.step(step_head, encoder, e, {method: local}, CFG[method], **kw)[method]
        opt.zero_grad()
        loss.backward()
        if world > 1:   # what DDP does to parameter gradients
            for p in (p for p in params if p.grad is not None):   # BYOL's predictor alone uses all
                dist.all_reduce(p.grad)
                p.grad /= world
        opt.step()
        if spec.after_step is not None:
            spec.after_step(state, encoder, {"byol": head}, CFG[method])
        losses.append(loss.item())
    return {"loss": losses, "params": [p.detach().clone() for p in params],
            "state": {k: v.clone() for k, v in state.state_dict().items()} if state is not None else {}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, port, out_dir, x):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        torch.set_num_threads(1)
        results = {m: run_method(m, x, rank, WORLD) for m in CFG}
        results["one_step"] = run_method("contrastive", x[:1], rank, WORLD)
        with open(f"{out_dir}/rank{rank}.pkl", "wb") as f:
            pickle.dump(results, f)
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp_methods")
    x = torch.randn(2, TRACKS, 2, IN, generator=torch.Generator().manual_seed(1))
    mp.start_processes(_worker, args=(_free_port(), str(out), x), nprocs=WORLD, start_method="spawn", join=True)
    return x, [pickle.loads((out / f"rank{r}.pkl").read_bytes()) for r in range(WORLD)]


@pytest.mark.parametrize("method", list(CFG))
def test_two_ranks_of_8_equal_one_process_of_16(ranks, method):
    x, results = ranks
    single = run_method(method, x, 0, 1)
    per_rank = [r[method] for r in results]
    for step in range(2):
        # the loss Lightning logs with sync_dist: the mean over ranks
        assert sum(r["loss"][step] for r in per_rank) / WORLD == pytest.approx(single["loss"][step], rel=1e-5)
    for r in per_rank:
        for got, want in zip(r["params"], single["params"]):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
        assert r["state"].keys() == single["state"].keys()
        for k in single["state"]:
            torch.testing.assert_close(r["state"][k], single["state"][k], rtol=1e-4, atol=1e-6)
    assert single["params"][0].ne(_build(method)[0].weight).any()   # the update did move the weights


def test_the_queue_holds_every_ranks_keys_in_batch_order_and_the_oldest_leave_first(ranks):
    x, results = ranks
    encoder, head, _ = _build("contrastive")
    with torch.no_grad():   # the first batch's keys, as the single process makes them: 16 tracks x 2 views
        first = torch.nn.functional.normalize(head.projector(encoder(x[0])).reshape(2 * TRACKS, OUT), dim=1)
    for r in results:
        one = r["one_step"]["state"]
        assert int(one["count"]) == 2 * TRACKS
        # rows 0-15 are rank 0's 8 tracks, rows 16-31 rank 1's: every rank holds both, in batch order
        torch.testing.assert_close(one["keys"][:2 * TRACKS], first, rtol=1e-4, atol=1e-6)
        two = r["contrastive"]["state"]
        assert int(two["count"]) == CFG["contrastive"].queue   # full: 64 keys offered to a queue of 40
        # the second batch in front; of the first only its first 8 rows are left, the rest left first
        torch.testing.assert_close(two["keys"][2 * TRACKS:], first[:CFG["contrastive"].queue - 2 * TRACKS],
                                   rtol=1e-4, atol=1e-6)
        assert not torch.allclose(two["keys"][:2 * TRACKS], first, atol=1e-3)


def test_byol_target_moved_once_per_step(ranks):
    _, results = ranks
    assert [int(r["byol"]["state"]["updates"]) for r in results] == [2, 2]
