"""``deltaprop train --distributed …`` in which rank 1 fails part-way, for the fault tests.

Usage (under mpirun): ``train_and_fail.py MODE STEP -- TRAIN ARGS…``; on rank 1, after STEP
gradient steps, MODE ``kill`` sends the process SIGKILL (a crashed machine), MODE ``raise``
raises a DataError (a user error on one rank only). The other ranks never learn of it from
deltaprop: what ends them is mpirun (kill) or MPI_Abort (raise).

With the environment variable ``KILL_STAMP`` set to a file name, MODE ``kill`` first writes
to it, as JSON, the time of the kill (``time.time()``) and the killed process's network
namespace (the inode of ``/proc/self/ns/net``): the multi-host tests measure how long the job
takes to end after it, and check that the rank died on the host they meant.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

from deltaprop import cli, distributed
from deltaprop.errors import DataError


def _stamp() -> None:
    path = os.environ.get("KILL_STAMP")
    if path:
        stamp = {"time": time.time(), "netns": os.stat("/proc/self/ns/net").st_ino}
        with open(path, "w") as f:
            json.dump(stamp, f)


def main() -> None:
    mode, step = sys.argv[1], int(sys.argv[2])
    argv = sys.argv[sys.argv.index("--") + 1 :]
    original = distributed.AllreduceBackprop.__call__
    calls = 0

    def failing(self, ws, r):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if self.rank == 1 and calls > step:
            if mode == "kill":
                _stamp()
                os.kill(os.getpid(), signal.SIGKILL)
            raise DataError(f"injected failure on rank 1 at step {calls}")
        return original(self, ws, r)

    distributed.AllreduceBackprop.__call__ = failing  # type: ignore[method-assign]
    cli.main(argv)


if __name__ == "__main__":
    main()
