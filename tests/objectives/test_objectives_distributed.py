"""NT-Xent over 2 gloo ranks == single-process NT-Xent over the concatenated batch (loss and gradients)."""
import pickle
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ssl_music.objectives import gather_with_grad, nt_xent, rank_and_world

WORLD = 2
TEMPERATURE = 0.2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _model(weight):
    lin = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    with torch.no_grad():
        lin.weight.copy_(weight)
    return lin


def _worker(rank, port, out_dir, weight, inputs, uneven):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        torch.set_num_threads(1)
        results = {"rank_and_world": rank_and_world()}
        for k, x in inputs.items():
            lin = _model(weight)
            local = x.chunk(WORLD)[rank].clone().requires_grad_(True)
            loss = nt_xent(lin(local), TEMPERATURE)
            loss.backward()
            results[k] = {"loss": loss.item(), "w_grad": lin.weight.grad, "x_grad": local.grad}
        # Unequal row counts: rank 0 has 3 rows, rank 1 has 2.
        rows = uneven[:3] if rank == 0 else uneven[3:]
        rows = rows.clone().requires_grad_(True)
        gathered = gather_with_grad(rows)
        (gathered * torch.arange(1.0, 6.0)[:, None]).sum().backward()
        results["uneven"] = {"gathered": gathered.detach(), "grad": rows.grad}
        with open(f"{out_dir}/rank{rank}.pkl", "wb") as f:
            pickle.dump(results, f)
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(6, 10, generator=g)
    inputs = {k: torch.randn(8, k, 10, generator=g) for k in (2, 3)}  # 4 tracks per rank
    uneven = torch.randn(5, 4, generator=g)
    mp.start_processes(_worker, args=(_free_port(), str(out), weight, inputs, uneven), nprocs=WORLD,
                       start_method="spawn", join=True)
    results = [pickle.loads((out / f"rank{r}.pkl").read_bytes()) for r in range(WORLD)]
    return weight, inputs, uneven, results


@pytest.mark.parametrize("k", [2, 3])
def test_two_ranks_equal_single_process(ranks, k):
    weight, inputs, _, results = ranks
    lin = _model(weight)
    x = inputs[k].clone().requires_grad_(True)
    loss = nt_xent(lin(x), TEMPERATURE)
    loss.backward()

    per_rank = [r[k] for r in results]
    # Loss: mean over ranks of the local means (what Lightning logs with sync_dist=True).
    assert sum(r["loss"] for r in per_rank) / WORLD == pytest.approx(loss.item(), rel=1e-5)
    # The local losses differ from each other, so the equality above is not trivial.
    assert abs(per_rank[0]["loss"] - per_rank[1]["loss"]) > 1e-4
    # Parameters: DDP averages the per-rank gradients.
    ddp_grad = sum(r["w_grad"] for r in per_rank) / WORLD
    torch.testing.assert_close(ddp_grad, lin.weight.grad, rtol=1e-4, atol=1e-6)
    # Inputs: each rank's input gradient is WORLD x the global-mean loss's gradient for its slice (the 1/WORLD
    # is what DDP's averaging applies to parameter gradients). Without the all-reduce in backward, the
    # cross-rank terms would be missing and this would fail.
    for rank, r in enumerate(per_rank):
        torch.testing.assert_close(r["x_grad"] / WORLD, x.grad.chunk(WORLD)[rank], rtol=1e-4, atol=1e-7)


def test_gather_with_grad_uneven_rows(ranks):
    _, _, uneven, results = ranks
    assert [r["rank_and_world"] for r in results] == [(0, 2), (1, 2)]
    weights = torch.arange(1.0, 6.0)[:, None].expand(5, 4)
    for rank, r in enumerate(results):
        torch.testing.assert_close(r["uneven"]["gathered"], uneven)
        mine = weights[:3] if rank == 0 else weights[3:]
        torch.testing.assert_close(r["uneven"]["grad"], WORLD * mine)  # both ranks' losses use my rows


def test_single_process_is_a_no_op():
    assert rank_and_world() == (0, 1)
    x = torch.randn(3, 2)
    assert gather_with_grad(x) is x
