"""``deltaprop train --distributed …`` in which rank 1 fails part-way, for the fault tests.

Usage (under mpirun): ``train_and_fail.py MODE STEP -- TRAIN ARGS…``; on rank 1, after STEP
gradient steps, MODE ``kill`` sends the process SIGKILL (a crashed machine), MODE ``raise``
raises a DataError (a user error on one rank only). The other ranks never learn of it from
deltaprop: what ends them is mpirun (kill) or MPI_Abort (raise).
"""

from __future__ import annotations

import os
import signal
import sys

from deltaprop import cli, distributed
from deltaprop.errors import DataError


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
                os.kill(os.getpid(), signal.SIGKILL)
            raise DataError(f"injected failure on rank 1 at step {calls}")
        return original(self, ws, r)

    distributed.AllreduceBackprop.__call__ = failing  # type: ignore[method-assign]
    cli.main(argv)


if __name__ == "__main__":
    main()
