"""Sharding under torch.distributed (gloo, 2 CPU processes): each rank answers its share, every
rank gets every answer, rank 0 alone writes; `torchrun ... harness run` scores like one process."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from harness.api import GenerateRequest, LoglikelihoodRequest
from harness.cache import RequestCache
from harness.distributed import SINGLE, Dist
from harness.engine import run_requests
from harness.testing import FakeModel, make_tiny_gpt2, torch_threads

REQUESTS = ([LoglikelihoodRequest(f"context {i}", f" {c}") for i in range(9) for c in "AB"]
            + [GenerateRequest(f"prompt {i}", ("\n",), 8) for i in range(7)])


class BrokenOnRank1(FakeModel):
    def generate(self, requests, progress=True):
        raise ValueError("out of memory, say")


def _rank_main(rank: int, world: int, tmp: str) -> None:
    """One rank: join the gloo group through a file (no port), answer REQUESTS twice."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp}/rendezvous", rank=rank, world_size=world)
    try:
        d = Dist(rank, world)
        cache = RequestCache(f"{tmp}/cache.sqlite") if d.is_main else None
        report = {}
        for attempt in ("first", "again"):
            model, stats = FakeModel("m", "salt"), {}
            answers = run_requests(model, REQUESTS + REQUESTS[:5], progress=False, cache=cache, cache_model="k",
                                   dist=d, chunk_size=3, ll_chunk_size=3, stats=stats)
            report[attempt] = {"answers": [a if isinstance(a, str) else [a.logprob, a.is_greedy] for a in answers],
                               "asked": sum(model.calls), "stats": stats}
        failing = BrokenOnRank1("m", "salt") if rank == 1 else FakeModel("m", "salt")
        try:
            run_requests(failing, [GenerateRequest(f"new {i}") for i in range(8)], progress=False, dist=d, chunk_size=2)
            report["failure"] = None
        except RuntimeError as exc:  # raised on both ranks, so neither waits in a collective
            report["failure"] = str(exc)
        with open(f"{tmp}/rank{rank}.json", "w") as fh:
            json.dump(report, fh)
    finally:
        dist.destroy_process_group()


def test_ranks_share_the_requests_and_all_get_every_answer(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_rank_main, args=(2, str(tmp_path)), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    single = run_requests(FakeModel("m", "salt"), REQUESTS + REQUESTS[:5], progress=False)
    expected = [a if isinstance(a, str) else [a.logprob, a.is_greedy] for a in single]
    n = len(REQUESTS)
    for rep in ranks:
        assert rep["first"]["answers"] == expected and rep["again"]["answers"] == expected
        assert rep["first"]["stats"] == {"hits": 0, "misses": n}
        assert rep["again"]["stats"] == {"hits": n, "misses": 0} and rep["again"]["asked"] == 0
        assert rep["failure"] == "rank 1: ValueError: out of memory, say"
    asked = [rep["first"]["asked"] for rep in ranks]
    assert sum(asked) == n and all(0 < a < n for a in asked)  # each unique request asked once, on one rank
    assert RequestCache(tmp_path / "cache.sqlite").count("k") == n  # rank 0 stored everyone's answers


def test_a_single_process_collectives_are_identities():
    assert SINGLE.all_gather("x") == ["x"] and SINGLE.broadcast(3) == 3


SUITE = "example_mc,mmlu:abstract_algebra,squad"


def test_torchrun_two_processes_score_like_one(tmp_path):
    model = str(make_tiny_gpt2(tmp_path / "tiny"))
    args = ["run", "--model", model, "--suite", SUITE, "--limit", "3", "--num-fewshot", "1", "--batch-size", "2",
            "--quiet"]
    two = tmp_path / "two"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "harness", *args, "--out", str(two)], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    one = tmp_path / "one"
    with torch_threads(1):
        result = CliRunner().invoke(__import__("harness.cli", fromlist=["cli"]).cli, [*args, "--out", str(one)])
    assert result.exit_code == 0, result.output
    r1, r2 = (json.loads((d / "results.json").read_text()) for d in (one, two))
    assert list(r2["benchmarks"]) == ["example_mc", "mmlu", "squad"]
    for name in r1["benchmarks"]:
        assert r2["benchmarks"][name]["metrics"] == r1["benchmarks"][name]["metrics"], name
        assert r2["benchmarks"][name]["n"] == r1["benchmarks"][name]["n"]
        assert (two / "samples" / f"{name}.jsonl").read_text() == (one / "samples" / f"{name}.jsonl").read_text()
    assert r2["benchmarks"]["mmlu"]["cache"]["model"]["misses"] == r1["benchmarks"]["mmlu"]["cache"]["model"]["misses"]
    assert (two / "index.html").is_file() and r2["complete"] is True
    assert proc.stdout.count("example_mc") == 1  # rank 0 alone prints the summary


@pytest.mark.parametrize("world", ["1", ""])
def test_a_single_process_needs_no_process_group(world, monkeypatch):
    from harness.distributed import from_env

    monkeypatch.setenv("WORLD_SIZE", world)
    assert from_env("cpu") is SINGLE
