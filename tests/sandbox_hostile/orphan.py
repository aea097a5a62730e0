# Double fork: a grandchild in its own session sleeps on after the program exits.
import os
import sys

if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", f"import time; time.sleep(1000)  # {ARGS['marker']}"])
    os._exit(0)
os.wait()
print("parent exits", flush=True)
if ARGS.get("loop"):
    while True:
        pass
