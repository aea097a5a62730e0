"""A minimal third-party plug-in: one multiple-choice benchmark, shipped like any other."""
import harness
from harness.api import Benchmark, Instance, LoglikelihoodRequest, Metric

DOCS = [
    {"q": "2 + 2 =", "choices": [" 3", " 4", " 5"], "gold": 1},
    {"q": "The sky is", "choices": [" blue", " green"], "gold": 0},
    {"q": "10 / 2 =", "choices": [" 2", " 5", " 20"], "gold": 1},
]


class Arithmetic(Benchmark):
    name = "example_mc"
    version = "0.3.1"
    description = "Three tiny multiple-choice questions (example plug-in)."
    metrics = (Metric("acc", "binary"),)
    subsets = ("example_mc",)

    def instances(self, config):
        docs = DOCS[: config.limit] if config.limit else DOCS
        for i, d in enumerate(docs):
            yield Instance(str(i), "example_mc", d, d["q"], d["choices"][d["gold"]],
                           [LoglikelihoodRequest(d["q"], c) for c in d["choices"]])

    def process(self, instance, responses):
        lls = [r.logprob for r in responses]
        pick = max(range(len(lls)), key=lls.__getitem__)
        return {"answer": instance.doc["choices"][pick].strip(), "loglikelihoods": lls,
                "scores": {"acc": float(pick == instance.doc["gold"])}}


@harness.hookimpl
def register_benchmarks(register):
    register(Arithmetic())
