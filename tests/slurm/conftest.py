"""A real one-node SLURM cluster on localhost for the slow cluster tests.

munged, slurmctld and slurmd are started in the foreground as child processes with every file (key,
socket, state, spool, logs, pid files) under one temp dir and non-default ports, so they never touch a
system munge or SLURM. Teardown stops exactly the processes started here, by PID.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol", "srun")
PACKAGES = ("munge", "slurmctld", "slurmd", "slurm-client")
FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL",
                "DEADLINE", "PREEMPTED"}


def _missing() -> list[str]:
    return [b for b in BINARIES if shutil.which(b) is None]


def _install() -> str | None:
    """apt-get the SLURM/munge packages; returns why it could not, or None."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "SLURM binaries missing and cannot apt-get install them (need root and apt-get)"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", *PACKAGES]):
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        if res.returncode != 0:
            return f"`{' '.join(cmd)}` failed: {res.stderr.strip()[-500:]}"
    return None if not _missing() else f"still missing after install: {_missing()}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node_hardware() -> dict[str, str]:
    """`slurmd -C` prints the line slurm.conf needs, e.g. `NodeName=vm CPUs=2 ... RealMemory=24105`."""
    out = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout
    first = out.splitlines()[0]
    return dict(item.split("=", 1) for item in first.split())


def _slurm_conf(root: Path, node: str, hw: dict[str, str], munge_socket: Path) -> str:
    keep = ("CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore", "RealMemory")
    hw_line = " ".join(f"{k}={hw[k]}" for k in keep if k in hw)
    return f"""\
ClusterName=sslmusic
SlurmctldHost=localhost
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire also sets how long a requeued job waits before it may start again (default 120 s)
AuthInfo=socket={munge_socket},cred_expire=10
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
ReturnToService=2
JobRequeue=1
MailProg=/bin/true
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MinJobAge=3600
KillWait=10
NodeName={node} NodeAddr=127.0.0.1 {hw_line} State=UNKNOWN
PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""


@dataclass
class LocalSlurm:
    root: Path
    conf: Path
    node: str
    cpus: int
    env: dict = field(repr=False)
    procs: list = field(default_factory=list, repr=False)

    def run(self, *cmd: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        res = subprocess.run(list(cmd), env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and res.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({res.returncode}): {res.stderr}")
        return res

    def sbatch(self, script: Path, *args: str) -> str:
        return self.run("sbatch", "--parsable", *args, str(script)).stdout.strip().split(";")[0]

    def job_field(self, job_id: str, name: str) -> str:
        out = self.run("scontrol", "-o", "show", "job", job_id).stdout
        fields = dict(item.split("=", 1) for item in out.split() if "=" in item)
        return fields.get(name, "")

    def states(self, job_id: str) -> list[str]:
        """States of a job, or of every task of an array job."""
        out = self.run("scontrol", "-o", "show", "job", job_id).stdout
        return [item.split("=", 1)[1] for item in out.split() if item.startswith("JobState=")]

    def wait(self, job_id: str, timeout: float = 300, poll: float = 1.0) -> list[str]:
        """Block until the job (every array task) is in a final state; returns the states."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = self.states(job_id)
            if states and all(s in FINAL_STATES for s in states):
                return states
            time.sleep(poll)
        raise TimeoutError(f"job {job_id} not finished after {timeout} s: {self.states(job_id)}\n{self.logs()}")

    def wait_for(self, predicate, timeout: float = 120, poll: float = 0.5, what: str = "condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(poll)
        raise TimeoutError(f"{what} not reached after {timeout} s\n{self.logs()}")

    def logs(self) -> str:
        parts = []
        for f in sorted((self.root / "log").glob("*")):
            parts.append(f"--- {f.name}\n" + "\n".join(f.read_text(errors="replace").splitlines()[-30:]))
        return "\n".join(parts)


def _start(cmd: list[str], log: Path, env: dict) -> subprocess.Popen:
    with open(log, "wb") as fh:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in reversed(procs):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def _wait_idle(cluster: LocalSlurm, procs: list[subprocess.Popen], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        dead = [p.args[0] for p in procs if p.poll() is not None]
        if dead:
            raise RuntimeError(f"{dead} exited during start-up\n{cluster.logs()}")
        res = cluster.run("sinfo", "-h", "-N", "-o", "%N %t", check=False, timeout=10)
        last = res.stdout.strip() + res.stderr.strip()
        if res.returncode == 0 and f"{cluster.node} idle" in res.stdout:
            return
        time.sleep(0.5)
    raise RuntimeError(f"node never became idle (last sinfo: {last!r})\n{cluster.logs()}")


def start_cluster(root: Path) -> LocalSlurm:
    for sub in ("munge", "state", "spool", "log"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    munge_dir = root / "munge"
    munge_dir.chmod(0o711)  # munged insists that clients can traverse to its socket
    key = munge_dir / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    sock = munge_dir / "munge.socket"

    hw = _node_hardware()
    node = subprocess.run(["hostname", "-s"], capture_output=True, text=True, check=True).stdout.strip()
    conf = root / "slurm.conf"
    conf.write_text(_slurm_conf(root, node, hw, sock))
    env = dict(os.environ, SLURM_CONF=str(conf))
    cluster = LocalSlurm(root=root, conf=conf, node=node, cpus=int(hw.get("CPUs", "1")), env=env)

    procs = cluster.procs
    try:
        procs.append(_start(["munged", "-F", "-f", f"--socket={sock}", f"--key-file={key}",
                             f"--log-file={munge_dir / 'munged.log'}", f"--pid-file={munge_dir / 'munged.pid'}",
                             f"--seed-file={munge_dir / 'munged.seed'}"], root / "log" / "munged.out", env))
        cluster.wait_for(sock.exists, timeout=20, what="munge socket")
        procs.append(_start(["slurmctld", "-D", "-i", "-f", str(conf)], root / "log" / "slurmctld.out", env))
        procs.append(_start(["slurmd", "-D", "-N", node, "-f", str(conf)], root / "log" / "slurmd.out", env))
        _wait_idle(cluster, procs)
    except Exception:
        _stop(procs)
        raise
    return cluster


def stop_cluster(cluster: LocalSlurm) -> None:
    """Cancel what is still queued or running (slurmstepd outlives slurmd), then stop our daemons by PID."""
    jobs = cluster.run("squeue", "-h", "-o", "%A", check=False).stdout.split()
    if jobs:
        cluster.run("scancel", *sorted(set(jobs)), check=False)
        try:
            cluster.wait_for(lambda: not cluster.run("squeue", "-h", check=False).stdout.strip(), timeout=30,
                             what="queue empty")
        except TimeoutError:
            pass
    _stop(cluster.procs)


@pytest.fixture(scope="session")
def slurm_cluster():
    """A running one-node SLURM; `SLURM_CONF` is set in os.environ while the session lasts."""
    if _missing():
        reason = _install()
        if reason:
            pytest.skip(reason)
    root = Path(tempfile.mkdtemp(prefix="ssl_music_slurm_"))
    try:
        cluster = start_cluster(root)
    except Exception:
        shutil.rmtree(root, ignore_errors=True)
        raise
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(cluster.conf)  # in-process `ssl-music slurm submit` calls need it too
    try:
        yield cluster
    finally:
        if old is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = old
        stop_cluster(cluster)
        shutil.rmtree(root, ignore_errors=True)
