# Kills its parent and every process it may signal; it (and the harness) must survive.
import os
import signal

print("ppid", os.getppid(), flush=True)
for target in (os.getppid(), -1):
    try:
        os.kill(target, signal.SIGKILL)
        print("kill", target, "sent", flush=True)
    except OSError as exc:
        print("kill", target, "refused", exc.errno, flush=True)
print("still alive", flush=True)
