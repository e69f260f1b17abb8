"""Keep numpy / scipy's BLAS threads from competing with torch's for the same cores.

OpenBLAS (numpy's and scipy's BLAS) keeps its worker threads spinning for a while after each call. When
torch runs right after (a librosa baseline, then the encoder; a scikit-learn probe, then an MLP probe), those
spinning threads hold the cores torch's own threads need: in the demo's tempo evaluation the encoder took
85 ms a file interleaved with librosa against 18 ms with OpenBLAS on one thread (``threadpoolctl``; the
commit that added this has the figures). Everything heavy in this package runs in torch, and the BLAS calls
left (librosa's filterbanks, scikit-learn's logistic regression on a few hundred rows) are small, so BLAS gets
one thread. ``SSL_MUSIC_BLAS_THREADS=N`` sets another number; ``0`` leaves the libraries' defaults.
"""
from __future__ import annotations

import os

_applied: int | None = None


def single_threaded_blas() -> int:
    """Limit BLAS to ``SSL_MUSIC_BLAS_THREADS`` (default 1) threads for this process and the processes it
    starts; returns the limit set (0: none). Idempotent.

    Two halves, because threadpoolctl reaches only the libraries already loaded and most commands load numpy
    and scipy later (``ssl-music demo`` and ``pretrain`` have neither loaded when this runs): OpenBLAS reads
    ``OPENBLAS_NUM_THREADS`` when it loads, here or in a child process. MKL's variable is left alone: torch
    links MKL for its own work."""
    global _applied
    if _applied is None:
        from threadpoolctl import threadpool_limits

        raw = os.environ.get("SSL_MUSIC_BLAS_THREADS", "1")
        try:
            n = int(raw)
        except ValueError:
            from ssl_music.errors import SSLMusicError

            raise SSLMusicError(f"SSL_MUSIC_BLAS_THREADS must be a whole number, got '{raw}'") from None
        if n > 0:
            os.environ["OPENBLAS_NUM_THREADS"] = str(n)
            threadpool_limits(limits=n, user_api="blas")
        _applied = max(n, 0)
    return _applied
