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
import os
print(json.dumps({"limit": limit, "before": before, "after": after, "again": single_threaded_blas(),
                  "env": os.environ.get("OPENBLAS_NUM_THREADS")}))
"""


def _env(value: str | None, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("SSL_MUSIC_BLAS_THREADS", "OPENBLAS_NUM_THREADS",
                                                          "GOTO_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    # a known starting point whatever the machine's core count; OpenBLAS reads GOTO_NUM_THREADS after
    # OPENBLAS_NUM_THREADS, which is the user's own setting these tests leave unset unless they test it
    env["GOTO_NUM_THREADS"] = "2"
    if value is not None:
        env["SSL_MUSIC_BLAS_THREADS"] = value
    return {**env, **extra}


def _run(code: str, env: dict, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _probe(value: str | None, order: str = "loaded", **extra: str) -> dict:
    return _run(PROBE, _env(value, **extra), order)


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


def test_a_users_openblas_setting_is_left_as_it_is():
    # (OpenBLAS caps its variable at the core count: 2 is a setting every test machine can show)
    res = _probe(None, "later", OPENBLAS_NUM_THREADS="2", GOTO_NUM_THREADS="1")
    assert res["env"] == "2" and res["after"] == [2, 2] and res["limit"] == 0
    # an explicit SSL_MUSIC_BLAS_THREADS still wins over it
    assert _probe("1", "later", OPENBLAS_NUM_THREADS="2")["after"] == [1, 1]


LIBRARY = r"""
import json, os, sys
import numpy, scipy.linalg
from threadpoolctl import threadpool_info
blas = lambda: [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
from ssl_music.threads import limited_blas
with limited_blas() as n:
    inside, env_inside = blas(), os.environ.get("OPENBLAS_NUM_THREADS")
out = {"n": n, "inside": inside, "env_inside": env_inside, "after": blas(), "env_after": os.environ.get("OPENBLAS_NUM_THREADS")}
# what a notebook calls: the limit is lifted on return, even when the call fails
if sys.argv[1] == "run_suite":
    from ssl_music_eval.suite import run_suite
    from ssl_music.config import CONFIG_DIR
    try:
        run_suite(sys.argv[2] + "/missing.ckpt", CONFIG_DIR / "eval" / "synthetic.yaml", sys.argv[2] + "/out",
                  data=[sys.argv[2] + "/labels.csv"])
    except Exception as exc:
        out["error"] = type(exc).__name__
    out["after_call"], out["env_after_call"] = blas(), os.environ.get("OPENBLAS_NUM_THREADS")
print(json.dumps(out))
"""


def test_python_callers_get_their_blas_threads_back(tmp_path):
    res = _run(LIBRARY, _env(None), "run_suite", str(tmp_path))
    assert res["n"] == 1 and res["inside"] == [1, 1] and res["env_inside"] == "1"
    assert res["after"] == [2, 2] and res["env_after"] is None
    assert res["error"] == "SSLMusicError"  # the missing checkpoint, read inside the limit
    assert res["after_call"] == [2, 2] and res["env_after_call"] is None
