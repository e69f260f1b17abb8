"""ssl_music.threads: BLAS limited to one thread (or SSL_MUSIC_BLAS_THREADS) in the process that asks.

Each case runs in a fresh interpreter: the limit is process-wide and must not leak into the suite."""
import json
import os
import subprocess
import sys

PROBE = r"""
import json, sys
if sys.argv[1] == "loaded":
    import numpy, scipy.linalg  # both OpenBLAS copies loaded before the call, as `ssl-music evaluate` has them
from threadpoolctl import threadpool_info
from ssl_music.threads import single_threaded_blas
before = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
try:
    limit = single_threaded_blas()
except Exception as exc:
    print(json.dumps({"error": f"{type(exc).__name__}: {exc}"})); raise SystemExit
import numpy, scipy.linalg  # loaded after the call, as `ssl-music demo` and `pretrain` load them
after = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
print(json.dumps({"limit": limit, "before": before, "after": after, "again": single_threaded_blas()}))
"""


def _probe(value: str | None, order: str = "loaded") -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("SSL_MUSIC_BLAS_THREADS", "OPENBLAS_NUM_THREADS",
                                                          "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env["OPENBLAS_NUM_THREADS"] = "2"  # a known starting point whatever the machine's core count
    if value is not None:
        env["SSL_MUSIC_BLAS_THREADS"] = value
    out = subprocess.run([sys.executable, "-c", PROBE, order], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_blas_gets_one_thread_by_default():
    res = _probe(None)
    assert len(res["before"]) == 2 and all(n == 2 for n in res["before"])  # numpy's and scipy's OpenBLAS
    assert res["limit"] == 1 and res["after"] == [1, 1] and res["again"] == 1


def test_libraries_loaded_after_the_call_are_limited_too():
    res = _probe(None, order="later")
    assert res["before"] == []  # nothing for threadpoolctl to reach yet
    assert res["limit"] == 1 and res["after"] == [1, 1]


def test_environment_sets_the_limit_or_leaves_the_default():
    assert _probe("0")["after"] == _probe("0")["before"]
    assert _probe("0")["limit"] == 0
    res = _probe("3")
    assert res["limit"] == 3 and all(n == 3 for n in res["after"])


def test_malformed_setting_is_named():
    assert "SSL_MUSIC_BLAS_THREADS" in _probe("two")["error"] and "'two'" in _probe("two")["error"]
