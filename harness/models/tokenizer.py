"""Tokenizers as tiktoken ``Encoding`` objects, built offline from files we ship or store.

Every native backend (GPT-2, Llama, GGUF) hands :class:`harness.models.tokenlm.TokenLM`
one :class:`Tokenizer`; tiktoken is fast and has no network needs once the ranks are
local. GPT-2's r50k_base ranks ship in ``harness/assets/gpt2/`` and are hash-checked
at load so a damaged install fails loudly instead of scoring garbage.
"""
from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import tiktoken

from ..errors import HarnessError

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "gpt2"
GPT2_RANKS_FILE = ASSETS / "r50k_base.tiktoken"
GPT2_RANKS_SHA256 = "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"
GPT2_PAT_STR = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
ENDOFTEXT = "<|endoftext|>"
TOKENIZER_FILE = "tokenizer.tiktoken"  # ranks file written into checkpoint dirs


@dataclass(eq=False)
class Tokenizer:
    """What a TokenLM needs from a tokenizer, around a tiktoken ``Encoding``.

    ``eot_id`` ends generation and is the prefix for empty contexts when there is
    no ``bos_id``; ``stop_ids`` are further end-of-turn ids (e.g. ``<|im_end|>``).
    ``add_bos`` prepends ``bos_id`` to every encoded context (as HF tokenizers do
    for Llama-2-style vocabularies).
    """

    encoding: tiktoken.Encoding
    eot_id: int
    bos_id: int | None = None
    add_bos: bool = False
    stop_ids: frozenset[int] = field(default_factory=frozenset)
    name: str = ""

    def encode(self, text: str, *, allow_special: bool = True) -> list[int]:
        """Token ids of ``text`` (no BOS). Special-token text (``<|im_start|>``) becomes its
        special id, as HF tokenizers do; pass ``allow_special=False`` to treat it as text."""
        if allow_special:
            return self.encoding.encode(text, allowed_special="all")
        return self.encoding.encode(text, disallowed_special=())

    def decode(self, ids: Iterable[int]) -> str:
        return self.encoding.decode(list(ids))

    @property
    def n_vocab(self) -> int:
        return self.encoding.n_vocab

    @property
    def special_tokens(self) -> dict[str, int]:
        return dict(self.encoding._special_tokens)

    @property
    def all_stop_ids(self) -> frozenset[int]:
        return frozenset(self.stop_ids) | {self.eot_id}

    def to_config(self) -> dict[str, Any]:
        """The ``"tokenizer"`` entry of a harness ``config.json`` (ranks go to a file)."""
        cfg: dict[str, Any] = {
            "name": self.name, "eot_id": self.eot_id, "bos_id": self.bos_id,
            "add_bos": self.add_bos, "stop_ids": sorted(self.stop_ids),
        }
        if self.is_gpt2():
            cfg["type"] = "gpt2"  # shipped with harness: nothing to store
        else:
            cfg.update(type="tiktoken", file=TOKENIZER_FILE, pat_str=self.encoding._pat_str,
                       special_tokens=self.special_tokens)
        return cfg

    def save(self, out_dir: str | Path) -> dict[str, Any]:
        """Write the ranks file next to a checkpoint (if needed); return :meth:`to_config`."""
        cfg = self.to_config()
        if cfg["type"] == "tiktoken":
            write_ranks(self.encoding._mergeable_ranks, Path(out_dir) / TOKENIZER_FILE)
        return cfg

    def is_gpt2(self) -> bool:
        enc = self.encoding
        return (enc.name == "gpt2" and enc._pat_str == GPT2_PAT_STR and enc.n_vocab == 50257
                and self.special_tokens == {ENDOFTEXT: 50256})


def read_ranks(path: str | Path, expected_sha256: str | None = None) -> dict[bytes, int]:
    """Parse a ``.tiktoken`` file (``base64(token) rank`` per line) without tiktoken's
    download cache; check its sha256 when given."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise HarnessError(f"{path}: cannot read tokenizer ranks ({e.strerror}); reinstall harness "
                           "or re-save the checkpoint") from None
    if expected_sha256 is not None:
        got = hashlib.sha256(data).hexdigest()
        if got != expected_sha256:
            raise HarnessError(f"{path}: sha256 {got[:16]}... does not match the expected "
                               f"{expected_sha256[:16]}...; the file is damaged, reinstall harness")
    ranks: dict[bytes, int] = {}
    try:
        for line in data.splitlines():
            if line:
                tok, rank = line.split()
                ranks[base64.b64decode(tok)] = int(rank)
    except ValueError:
        raise HarnessError(f"{path}: not a tiktoken ranks file (want 'base64 rank' per line); "
                           "re-save the checkpoint") from None
    return ranks


def write_ranks(ranks: dict[bytes, int], path: Path) -> None:
    lines = (base64.b64encode(tok) + b" " + str(rank).encode()
             for tok, rank in sorted(ranks.items(), key=lambda kv: kv[1]))
    path.write_bytes(b"\n".join(lines) + b"\n")


@cache
def _gpt2_encoding(ranks_file: str, sha256: str) -> tiktoken.Encoding:
    ranks = read_ranks(ranks_file, sha256)
    return tiktoken.Encoding(name="gpt2", pat_str=GPT2_PAT_STR, mergeable_ranks=ranks,
                             special_tokens={ENDOFTEXT: 50256}, explicit_n_vocab=50257)


def gpt2_tokenizer(ranks_file: str | Path = GPT2_RANKS_FILE,
                   sha256: str = GPT2_RANKS_SHA256) -> Tokenizer:
    """GPT-2's BPE (r50k_base, what ``tiktoken.get_encoding("gpt2")`` downloads), offline."""
    enc = _gpt2_encoding(str(ranks_file), sha256)
    return Tokenizer(encoding=enc, eot_id=50256, name="gpt2")


def tokenizer_from_config(cfg: dict[str, Any] | None, ckpt_dir: str | Path) -> Tokenizer:
    """Rebuild the tokenizer recorded by :meth:`Tokenizer.save` in a checkpoint dir."""
    cfg = cfg or {"type": "gpt2"}
    kind = cfg.get("type", "gpt2")
    if kind == "gpt2":
        return gpt2_tokenizer()
    if kind != "tiktoken":
        raise HarnessError(f"{Path(ckpt_dir) / 'config.json'}: unknown tokenizer type {kind!r} "
                           "(want 'gpt2' or 'tiktoken'); re-save the checkpoint")
    try:
        ranks = read_ranks(Path(ckpt_dir) / cfg.get("file", TOKENIZER_FILE))
        enc = tiktoken.Encoding(name=cfg.get("name") or "tiktoken", pat_str=cfg["pat_str"],
                                mergeable_ranks=ranks,
                                special_tokens={k: int(v) for k, v in cfg["special_tokens"].items()})
        return Tokenizer(encoding=enc, eot_id=int(cfg["eot_id"]), bos_id=cfg.get("bos_id"),
                         add_bos=bool(cfg.get("add_bos", False)),
                         stop_ids=frozenset(cfg.get("stop_ids", ())), name=cfg.get("name", ""))
    except (KeyError, TypeError, ValueError) as e:
        raise HarnessError(f"{Path(ckpt_dir) / 'config.json'}: bad 'tokenizer' entry ({e}); "
                           "re-save the checkpoint") from None

