# Disk bomb: one ever-growing file; RLIMIT_FSIZE must stop it (Python ignores SIGXFSZ -> EFBIG).
chunk = b"x" * (1 << 20)
with open("big.bin", "wb") as fh:
    while True:
        fh.write(chunk)
        fh.flush()
