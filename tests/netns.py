"""Simulated hosts for the multi-host MPI tests: network namespaces joined by veth pairs.

In a real multi-host job the ranks run on other machines: they reach each other over TCP,
and ``mpirun`` starts a daemon on every other machine through ssh. ``Hosts(n, folder)``
stands n such machines up on this one (root only):

- host k is the network namespace ``dpmh-<pid>-<token>-<k>`` (pid: the process that made
  it; token: random, so that two test runs never collide) holding the address 10.99.0.<k+1>;
- two hosts are joined by one veth pair, three or more by a bridge in host 0 with a veth pair
  to every other host. Both ends of a pair are created inside the namespaces, never in the
  machine's own, so deleting the namespaces destroys them;
- ``mpirun`` runs inside host 0 and reaches the others through an agent script in place of
  ssh (``PRTE_MCA_plm_ssh_agent``): ``agent HOST COMMAND…`` runs COMMAND in the namespace that
  owns HOST with a fresh environment, as ssh would (so the job needs ``-x VAR`` exactly as it
  would between real machines), and logs the launch;
- every host has its own temporary folder (TMPDIR, where Open MPI keeps its session files),
  inside ``folder``: a job killed part-way leaves nothing in the machine's /tmp.

The namespaces share the file system, the process table and the host name; the last one is
why Open MPI needs ``MPI_FLAGS`` to treat them as separate hosts.

Clean-up: ``close()`` kills whatever still runs in the namespaces (a namespace outlives
``ip netns del`` while a process is inside it), deletes them, and may be called again. It
runs when a ``with`` block ends, however it ends (a failed assertion, Ctrl-C), from the test
fixtures' teardown, and at interpreter exit. What a killed test run leaves behind (SIGKILL, a
power cut), ``sweep()`` removes: namespaces with this prefix whose process no longer runs.
``python tests/netns.py sweep`` runs it from a shell.
"""

from __future__ import annotations

import atexit
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from mpi_support import JOB_TIMEOUT, job_env, mpi_skip_reason, mpirun_path

PREFIX = "dpmh"
SUBNET = "10.99.0.0/24"
# Threads pinned by job_env(), and where the worktree's sources are: exported to every rank.
EXPORTED = ("PATH", "PYTHONPATH", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
MPI_FLAGS = (
    # PRRTE's daemons reach mpirun over the simulated network only.
    "--prtemca", "prte_if_include", SUBNET,
    # Ranks talk TCP over the simulated network only, through ob1 (the TCP-capable PML): a
    # job that cannot fails instead of finding another way.
    "--mca", "btl", "tcp,self", "--mca", "btl_tcp_if_include", SUBNET, "--mca", "pml", "ob1",
    # Every namespace has this machine's host name, so Open MPI takes them for one node and
    # picks a shared-memory collective: an Allreduce gave 2.0 instead of 3.0, then hung.
    "--mca", "coll", "^han,sm,xhc,acoll",
)
NAME = re.compile(rf"{PREFIX}-(\d+)-[0-9a-f]+-\d+")
# Seconds to wait for killed processes to leave a namespace before deleting it.
EXIT_WAIT = 10.0


class Unavailable(RuntimeError):
    """Network namespaces or veth pairs cannot be made here; the message says which command
    failed and why."""


def address(k: int) -> str:
    """Host k's address on SUBNET."""
    return f"10.99.0.{k + 1}"


def skip_reason() -> str | None:
    """Why the multi-host tests cannot run here, or None (then ``Hosts.open`` may still raise
    ``Unavailable``: whether namespaces can be made is only known by making one)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "network namespaces need root (.ci/run runs as root)"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed (apt-get install iproute2)"
    return mpi_skip_reason()


def _ip(*args: str) -> str:
    """Run ``ip ARGS…``; its standard output. CalledProcessError (with stderr) on failure."""
    return subprocess.run(
        [shutil.which("ip") or "ip", *args], check=True, capture_output=True, text=True
    ).stdout


def namespaces() -> list[str]:
    """The names ``ip netns list`` shows (every named namespace on the machine)."""
    return [line.split()[0] for line in _ip("netns", "list").splitlines() if line.strip()]


def _inode(name: str) -> int:
    return os.stat(f"/run/netns/{name}").st_ino


def processes_in(inodes: set[int]) -> list[int]:
    """The processes whose network namespace is one of ``inodes`` (any namespace, named or
    not: a deleted namespace lives on while a process is inside)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.stat(entry / "ns" / "net").st_ino in inodes:
                    pids.append(int(entry.name))
            except OSError:  # exited meanwhile, or a zombie
                pass
    return pids


def _remove(name: str) -> None:
    """Kill every process in namespace ``name`` (all of them ours), then delete it."""
    try:
        inode = {_inode(name)}
    except FileNotFoundError:  # already gone
        return
    deadline = time.monotonic() + EXIT_WAIT
    while pids := processes_in(inode):
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if time.monotonic() > deadline:
            break  # deleted anyway; leftovers() will name the survivors
        time.sleep(0.05)
    _ip("netns", "delete", name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep() -> list[str]:
    """Delete the namespaces of earlier test runs that did not clean up (their creating
    process no longer runs); the names deleted. Others' namespaces, and those of runs still
    going, are left alone."""
    swept = []
    for name in namespaces():
        match = NAME.fullmatch(name)
        if match and not _alive(int(match[1])):
            _remove(name)
            swept.append(name)
    return swept


class Hosts:
    """n simulated hosts; ``with Hosts(n, folder) as hosts: hosts.mpirun(…)``.

    Parameters
    ----------
    n : int
        Number of hosts, ≥ 2.
    folder : Path
        Where the agent script, its launch log and the hostfiles are written.
    """

    def __init__(self, n: int, folder: Path) -> None:
        if n < 2:
            raise ValueError(f"`n` must be >= 2 hosts; got {n}")
        token = secrets.token_hex(3)
        self.n = n
        self.folder = Path(folder)
        self.names = [f"{PREFIX}-{os.getpid()}-{token}-{k}" for k in range(n)]
        self.addresses = [address(k) for k in range(n)]
        self.link = f"dp{token}"  # every interface's name starts with it (≤ 15 characters)
        self.inodes: list[int] = []
        self.agent = self.folder / "agent"
        self.launch_log = self.folder / "launches"
        self.hostfile = self.folder / "hosts"
        self.tmp = [self.folder / "tmp" / host for host in self.addresses]
        self._created: list[str] = []

    # ------------------------------------------------------------------ set up, tear down
    def open(self) -> Hosts:
        """Create the namespaces, the links, the agent and the hostfile. On any failure
        everything made so far is removed; ``Unavailable`` if an ``ip`` command failed."""
        _OPENED.append(self)
        try:
            for name in self.names:
                _ip("netns", "add", name)
                self._created.append(name)
                self.inodes.append(_inode(name))
                _ip("-n", name, "link", "set", "lo", "up")
            self._wire()
        except subprocess.CalledProcessError as e:
            self.close()
            raise Unavailable(
                f"simulated hosts cannot be made here: `{shlex.join(e.cmd)}` failed: "
                f"{e.stderr.strip()}"
            ) from None
        except BaseException:
            self.close()
            raise
        for folder in self.tmp:
            folder.mkdir(parents=True, exist_ok=True)
        self._write_agent()
        self.hostfile.write_text("".join(f"{a} slots=1\n" for a in self.addresses))
        return self

    def _wire(self) -> None:
        first, link = self.names[0], self.link
        if self.n == 2:  # one veth pair, host 0 to host 1
            _ip("link", "add", f"{link}0", "netns", first, "type", "veth",
                "peer", "name", f"{link}1", "netns", self.names[1])
            ends = [f"{link}0", f"{link}1"]
        else:  # a bridge in host 0, a veth pair from it to every other host
            _ip("-n", first, "link", "add", f"{link}br", "type", "bridge")
            ends = [f"{link}br"]
            for k, name in enumerate(self.names[1:], start=1):
                _ip("link", "add", f"{link}p{k}", "netns", first, "type", "veth",
                    "peer", "name", f"{link}{k}", "netns", name)
                _ip("-n", first, "link", "set", f"{link}p{k}", "master", f"{link}br", "up")
                ends.append(f"{link}{k}")
        for name, end, host in zip(self.names, ends, self.addresses, strict=True):
            _ip("-n", name, "addr", "add", f"{host}/24", "dev", end)
            _ip("-n", name, "link", "set", end, "up")

    def _write_agent(self) -> None:
        cases = "".join(
            f"  {host}) ns={name} ;;\n" for host, name in zip(self.addresses, self.names,
                                                            strict=True)
        )
        self.agent.write_text(
            "#!/bin/sh\n"
            "# ssh's stand-in (PRTE_MCA_plm_ssh_agent): `agent HOST COMMAND...` runs COMMAND\n"
            "# in the namespace owning HOST, with a fresh environment as ssh gives.\n"
            "host=$1\nshift\n"
            f'case "$host" in\n{cases}'
            '  *) echo "agent: no simulated host $host" >&2; exit 1 ;;\n'
            "esac\n"
            f'echo "$host" >> {shlex.quote(str(self.launch_log))}\n'
            f'exec {shlex.quote(shutil.which("ip") or "ip")} netns exec "$ns" '
            'env -i HOME="$HOME" PATH=/usr/sbin:/usr/bin:/sbin:/bin '
            f'TMPDIR={shlex.quote(str(self.folder / "tmp"))}/"$host" /bin/sh -c "$*"\n'
        )
        self.agent.chmod(0o755)

    def close(self) -> None:
        """Kill what runs in the namespaces and delete them; nothing if already closed."""
        while self._created:
            _remove(self._created[-1])
            self._created.pop()

    def __enter__(self) -> Hosts:
        return self if self._created else self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ use
    def mpirun(self, *args: str, cwd: Path, env: dict[str, str] | None = None,
               timeout: float = JOB_TIMEOUT) -> subprocess.CompletedProcess[str]:
        """``mpirun python ARGS…`` from host 0, one rank per host (rank k on host k).

        ``env`` adds variables, exported to every rank. The CompletedProcess (text output).
        """
        extra = env or {}
        exported = [f for var in (*EXPORTED, *extra) for f in ("-x", var)]
        cmd = [shutil.which("ip") or "ip", "netns", "exec", self.names[0], mpirun_path() or "",
               "--allow-run-as-root", "--hostfile", str(self.hostfile), "-n", str(self.n),
               *exported, *MPI_FLAGS, sys.executable, *args]
        full_env = {**job_env(), **extra, "PRTE_MCA_plm_ssh_agent": str(self.agent),
                    "TMPDIR": str(self.tmp[0])}
        return subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True,
                              timeout=timeout)

    def launches(self) -> list[str]:
        """The hosts the agent has started a daemon on, in order."""
        if not self.launch_log.exists():
            return []
        return self.launch_log.read_text().split()

    def processes(self) -> list[int]:
        """The processes running in these hosts' namespaces."""
        return processes_in(set(self.inodes))

    def leftovers(self) -> list[str]:
        """What of these hosts still exists: namespaces by name, processes inside them, and
        interfaces named like theirs in this machine's own namespace. Empty after close()."""
        found = [f"namespace {n}" for n in namespaces() if n in self.names]
        found += [f"process {pid} in one of {self.names}" for pid in self.processes()]
        found += [f"interface {name}" for name in _root_interfaces()
                  if name.startswith(self.link)]
        return found


def _root_interfaces() -> list[str]:
    """Names of the network interfaces in this process's namespace."""
    lines = _ip("-o", "link", "show").splitlines()
    return [line.split(":")[1].strip().split("@")[0] for line in lines]


_OPENED: list[Hosts] = []


def leftovers() -> list[str]:
    """What this process's hosts left behind, plus any namespace named as made by this
    process that no Hosts knows about. Empty when everything was cleaned up."""
    mine = re.compile(rf"{PREFIX}-{os.getpid()}-")
    known = {name for hosts in _OPENED for name in hosts.names}
    found = [f"namespace {n}" for n in namespaces() if mine.match(n) and n not in known]
    for hosts in _OPENED:
        found += hosts.leftovers()
    return found


@atexit.register
def _close_all() -> None:
    for hosts in _OPENED:
        hosts.close()


if __name__ == "__main__":
    if sys.argv[1:] != ["sweep"]:
        sys.exit("usage: python tests/netns.py sweep")
    for swept in sweep():
        print(f"deleted {swept}")
