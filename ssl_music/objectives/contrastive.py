"""NT-Xent (SimCLR) generalised to K >= 2 views per track, with negatives from every rank."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ssl_music.objectives.distributed import gather_rows


def nt_xent(z: torch.Tensor, temperature: float) -> torch.Tensor:
    """Normalised-temperature cross-entropy over ``z`` [B, K, D] (K views of each of B tracks).

    Row i = (track b, view k) is scored against every other row of the global batch (all ranks, gathered
    with gradient); its positives are the other K-1 views of track b:

        loss_i = -1/(K-1) * sum_{p in P(i)} log( exp(s_ip / t) / sum_{a != i} exp(s_ia / t) )

    with s the cosine similarity. For K = 2 this is SimCLR's NT-Xent exactly; for K > 2 it is the
    multi-positive form (SupCon's L_out with track identity as the label). Returns the mean over this rank's
    rows; under DDP with equal batch sizes, the mean of that value over ranks and the DDP-averaged gradients
    equal the single-process loss and gradients over the concatenated batch.
    """
    if z.dim() != 3 or z.shape[1] < 2:
        raise ValueError(f"nt_xent expects z of shape [B, K >= 2, D], got {tuple(z.shape)}")
    # float32 with autocast off: under bf16-mixed the matmul would cast back to bf16 (cosine resolution
    # ~0.004, ~0.04 in logits at t = 0.1), blurring near-identical positives against hard negatives.
    with torch.autocast(device_type=z.device.type, enabled=False):
        return _nt_xent_fp32(z.float(), temperature)


def _nt_xent_fp32(z: torch.Tensor, temperature: float) -> torch.Tensor:
    b, k, d = z.shape
    local = F.normalize(z.reshape(b * k, d), dim=1)
    everyone, offset = gather_rows(local)
    logits = local @ everyone.T / temperature                                       # [b*k, N]
    rows = torch.arange(b * k, device=z.device)
    global_rows = rows + offset
    logits[rows, global_rows] = float("-inf")  # a view is not its own negative
    track = torch.arange(everyone.shape[0], device=z.device) // k
    positive = track[None, :] == (global_rows // k)[:, None]
    positive[rows, global_rows] = False
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    return -(log_prob.masked_fill(~positive, 0.0).sum(dim=1) / (k - 1)).mean()
