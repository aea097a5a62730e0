"""The --out writability probe: one line for an unwritable directory, and no race between
torchrun's ranks checking the same directory at once (they once deleted each other's probe)."""
from __future__ import annotations

import threading

import pytest

from harness.errors import HarnessError
from harness.files import check_out_dir


def test_concurrent_checks_of_one_directory_do_not_collide(tmp_path):
    errors = []

    def check():
        for _ in range(200):
            try:
                check_out_dir(tmp_path / "out")
            except HarnessError as e:
                errors.append(str(e))

    threads = [threading.Thread(target=check) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert list((tmp_path / "out").iterdir()) == []  # no probe left behind


def test_a_file_in_the_way_is_one_line(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(HarnessError, match=r"--out .*f/sub: cannot write there .*choose a writable directory"):
        check_out_dir(tmp_path / "f" / "sub")
