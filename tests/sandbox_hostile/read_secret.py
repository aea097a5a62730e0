# Looks for a secret the test put in the parent's environment.
import os

found = [f"env:{k}" for k, v in os.environ.items() if ARGS["secret"] in v]
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            with open(f"/proc/{pid}/environ", "rb") as fh:
                if ARGS["secret"].encode() in fh.read():
                    found.append(f"proc:{pid}")
        except OSError:
            pass
print("found" if found else "not found", found, sorted(os.environ))
