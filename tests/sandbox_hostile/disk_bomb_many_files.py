# Disk bomb that stays under the file-size limit: many files; the tmpfs size must stop it.
chunk = b"x" * (1 << 20)
i = 0
while True:
    with open(f"f{i}.bin", "wb") as fh:
        fh.write(chunk)
    i += 1
