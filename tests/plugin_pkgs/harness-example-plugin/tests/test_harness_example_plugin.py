"""The example plug-in's own tests, as a third party writes them (`tox -e plugin` runs them installed)."""
from harness_example_plugin import DOCS, Arithmetic

from harness.api import BenchmarkConfig, Instance, LoglikelihoodResult
from harness.testing import check_benchmark


def test_contract():
    summary = check_benchmark(Arithmetic())
    assert summary["n"] == len(DOCS) and set(summary["aggregate"]) == {"acc"}


def test_limit_and_scoring():
    assert len(list(Arithmetic().instances(BenchmarkConfig(limit=2)))) == 2
    doc = DOCS[0]
    inst = Instance("0", "example_mc", doc, doc["q"], doc["choices"][doc["gold"]], [])
    lls = [LoglikelihoodResult(-2.0, False), LoglikelihoodResult(-0.1, True), LoglikelihoodResult(-3.0, False)]
    assert Arithmetic().process(inst, lls)["scores"] == {"acc": 1.0}
    assert Arithmetic().process(inst, [lls[1], lls[0], lls[2]])["scores"] == {"acc": 0.0}
