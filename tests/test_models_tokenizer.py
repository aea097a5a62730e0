"""The shipped GPT-2 tokenizer: right ids, offline, and refuses a damaged ranks file."""
from __future__ import annotations

import shutil

import pytest

from harness.errors import HarnessError
from harness.models.tokenizer import ASSETS, GPT2_RANKS_FILE, gpt2_tokenizer, read_ranks

SAMPLES = ["Hello world", " leading space", "naïve café — 東京 😀", "x = f(a, b)\n\tindent", "  two  spaces",
           "it's we'll they're 123456", "<|endoftext|>", ""]


def test_gpt2_known_ids_and_roundtrip():
    tok = gpt2_tokenizer()
    assert tok.encode("Hello world") == [15496, 995]
    assert tok.eot_id == 50256 and tok.n_vocab == 50257 and tok.special_tokens == {"<|endoftext|>": 50256}
    assert tok.encode("a<|endoftext|>") == [64, 50256]
    assert 50256 not in tok.encode("a<|endoftext|>", allow_special=False)
    for s in SAMPLES:
        assert tok.decode(tok.encode(s)) == s


def test_gpt2_matches_the_data_gym_files_via_transformers(tmp_path):
    """An independent BPE implementation over encoder.json + vocab.bpe gives the same ids."""
    from transformers import AutoTokenizer

    from harness.testing import make_tiny_gpt2

    hf = AutoTokenizer.from_pretrained(str(make_tiny_gpt2(tmp_path / "hf", fmt="hf")))  # ships both files
    tok = gpt2_tokenizer()
    for s in SAMPLES[:-2]:
        assert tok.encode(s) == hf.encode(s), s


def test_shipped_licences_and_hash():
    assert (ASSETS / "LICENSE-openai-gpt-2.txt").is_file() and (ASSETS / "LICENSE-openai-whisper.txt").is_file()
    read_ranks(GPT2_RANKS_FILE, "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930")


def test_damaged_ranks_file_is_refused(tmp_path):
    bad = tmp_path / "r50k_base.tiktoken"
    shutil.copyfile(GPT2_RANKS_FILE, bad)
    data = bytearray(bad.read_bytes())
    data[100] ^= 1
    bad.write_bytes(bytes(data))
    with pytest.raises(HarnessError, match="sha256") as e:
        gpt2_tokenizer(ranks_file=bad)
    assert str(bad) in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(HarnessError, match="cannot read"):
        gpt2_tokenizer(ranks_file=tmp_path / "missing.tiktoken")
