"""Keep numpy / scipy's BLAS threads from competing with torch's for the same cores.

OpenBLAS (numpy's and scipy's BLAS) keeps its worker threads spinning for a while after each call. When
torch runs right after (a librosa baseline, then the encoder; a scikit-learn probe, then an MLP probe), those
spinning threads hold the cores torch's own threads need: in the demo's tempo evaluation the encoder took
85 ms a file interleaved with librosa against 18 ms with OpenBLAS on one thread (``threadpoolctl``; the
commit that added this has the figures). Everything heavy in this package runs in torch, and the BLAS calls
left (librosa's filterbanks, scikit-learn's logistic regression on a few hundred rows) are small, so BLAS gets
one thread. ``SSL_MUSIC_BLAS_THREADS=N`` sets another number; ``0`` leaves the libraries' defaults. A user's
own ``OPENBLAS_NUM_THREADS`` is their decision and is left alone unless ``SSL_MUSIC_BLAS_THREADS`` is set.

The CLI limits its whole process (``single_threaded_blas``); ``pretrain()`` and ``run_suite()`` called from
Python limit BLAS only while they run (``limited_blas``), so a notebook gets its threads back.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

ENV = "OPENBLAS_NUM_THREADS"  # the only variable set here: MKL's is left alone, torch links MKL for its own work

_applied: int | None = None
_set_by_us: str | None = None   # the value single_threaded_blas put in ENV, so a later call does not take it for the user's


def _requested() -> int:
    """Threads to limit BLAS to; 0 for none (SSL_MUSIC_BLAS_THREADS=0, or the user set OPENBLAS_NUM_THREADS)."""
    raw = os.environ.get("SSL_MUSIC_BLAS_THREADS")
    if raw is None:
        user = os.environ.get(ENV)
        return 0 if user is not None and user != _set_by_us else 1
    try:
        return max(int(raw), 0)
    except ValueError:
        from ssl_music.errors import SSLMusicError

        raise SSLMusicError(f"SSL_MUSIC_BLAS_THREADS must be a whole number, got '{raw}'") from None


def single_threaded_blas() -> int:
    """Limit BLAS to ``SSL_MUSIC_BLAS_THREADS`` (default 1) threads for this process and the processes it
    starts; returns the limit set (0: none). Idempotent. For a command's whole process: Python callers use
    ``limited_blas``.

    Two halves, because threadpoolctl reaches only the libraries already loaded and most commands load numpy
    and scipy later (``ssl-music demo`` and ``pretrain`` have neither loaded when this runs): OpenBLAS reads
    ``OPENBLAS_NUM_THREADS`` when it loads, here or in a child process."""
    global _applied, _set_by_us
    if _applied is None:
        from threadpoolctl import threadpool_limits

        n = _requested()
        if n > 0:
            os.environ[ENV] = _set_by_us = str(n)
            threadpool_limits(limits=n, user_api="blas")
        _applied = n
    return _applied


@contextmanager
def limited_blas() -> Iterator[int]:
    """``single_threaded_blas`` for the duration of a block: on exit the environment variable and every BLAS
    library's thread count (those loaded inside the block too) are what they were, or would have been."""
    if _applied is not None:   # the CLI already limited the whole process
        yield _applied
        return
    n = _requested()
    if n == 0:
        yield 0
        return
    from threadpoolctl import ThreadpoolController

    def libs():
        return ThreadpoolController().select(user_api="blas").lib_controllers

    before = {lib.filepath: lib.num_threads for lib in libs()}
    saved = os.environ.get(ENV)
    os.environ[ENV] = str(n)
    for lib in libs():
        lib.set_num_threads(n)
    try:
        yield n
    finally:
        if saved is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = saved
        # a library loaded inside the block read our variable: give it what it would have read instead
        default = int(saved) if saved and saved.isdigit() else None
        for lib in libs():
            threads = before.get(lib.filepath, default)
            lib.set_num_threads(threads if threads else _default_threads())


def _default_threads() -> int:
    """What OpenBLAS starts with when no variable says otherwise: GOTO_NUM_THREADS, OMP_NUM_THREADS, or the cores."""
    for var in ("GOTO_NUM_THREADS", "OMP_NUM_THREADS"):
        if (os.environ.get(var) or "").isdigit() and int(os.environ[var]) > 0:
            return int(os.environ[var])
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def blas_limited(fn):
    """Run ``fn`` inside ``limited_blas``: the library entry points (``pretrain``, ``run_suite``)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with limited_blas():
            return fn(*args, **kwargs)

    return wrapper
