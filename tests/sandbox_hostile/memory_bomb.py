# Memory bomb: grabs and touches memory until RLIMIT_AS stops it (MemoryError).
hog = []
while True:
    hog.append(bytearray(64 << 20))
