# Fork bomb: forks forever; RLIMIT_NPROC must refuse, the timeout must kill the lot.
import os
import sys

refused = 0
while True:
    try:
        os.fork()
    except OSError as exc:
        if refused == 0:
            print(f"fork refused errno={exc.errno}", file=sys.stderr, flush=True)
        refused += 1
