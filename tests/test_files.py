"""The shared JSON Lines reader names the file and line of a bad record."""
import pytest

from harness.errors import HarnessError
from harness.files import iter_jsonl


def test_blank_lines_skipped_and_line_numbers_kept():
    assert list(iter_jsonl(['{"a": 1}', "", " ", "[2]"], "f")) == [(1, {"a": 1}), (4, [2])]


def test_bad_json_names_file_line_and_hint():
    with pytest.raises(HarnessError, match=r"^samples x\.jsonl line 2: invalid JSON \(.*\); re-run it$"):
        list(iter_jsonl(['{"a": 1}', '{"a": '], "samples x.jsonl", "re-run it"))
