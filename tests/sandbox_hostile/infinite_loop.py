# Infinite loop: only the wall-clock timeout (or RLIMIT_CPU) ends it.
while True:
    pass
