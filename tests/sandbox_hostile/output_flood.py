# Writes far more output than the harness keeps (to both streams).
import sys

line = "x" * 1023 + "\n"
for _ in range(ARGS["mib"] * 1024):
    sys.stdout.write(line)
    sys.stderr.write(line)
