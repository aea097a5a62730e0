"""MMLU (Hendrycks et al.), reproducing lm-eval's ``mmlu`` task byte for byte.

Same prompt (description, ``question.strip()``, ``A. ..`` lines, ``Answer:``), same
few-shot examples (the first k rows of the subject's dev split, ``sampler: first_n``),
same continuations (``" A"`` .. ``" D"``) and the same ``acc`` (argmax loglikelihood),
so numbers are comparable with published lm-eval results. The subject -> category
map is lm-eval's ``mmlu_<category>_tasks`` tags (checked against its yaml in the tests).
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.api import (
    Benchmark,
    BenchmarkConfig,
    HarnessError,
    Instance,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    Metric,
    hookimpl,
)
from harness.api.data import bundled, data_dir, effective_limit, load_hub, read_text, select_subsets, take

# Test questions per subject in the default run on the bundled data (which holds the whole test
# split, 100-1534 per subject): 57 x 2 five-shot questions take ~2-3 minutes for a 135M model on
# 2 CPU cores; ``--limit mmlu=1534`` runs all 14,042.
DEFAULT_LIMIT = 2
NUM_FEWSHOT = 5  # lm-eval's default for mmlu; the dev split has exactly 5 rows per subject
LETTERS = ("A", "B", "C", "D")
HUB_PATH = "cais/mmlu"  # lm-eval's dataset_path
_HEADER = ["question", "choice0", "choice1", "choice2", "choice3", "answer"]

CATEGORIES: dict[str, list[str]] = {
    "stem": [
        "abstract_algebra", "anatomy", "astronomy", "college_biology", "college_chemistry",
        "college_computer_science", "college_mathematics", "college_physics", "computer_security",
        "conceptual_physics", "electrical_engineering", "elementary_mathematics", "high_school_biology",
        "high_school_chemistry", "high_school_computer_science", "high_school_mathematics",
        "high_school_physics", "high_school_statistics", "machine_learning",
    ],
    "humanities": [
        "formal_logic", "high_school_european_history", "high_school_us_history",
        "high_school_world_history", "international_law", "jurisprudence", "logical_fallacies",
        "moral_disputes", "moral_scenarios", "philosophy", "prehistory", "professional_law",
        "world_religions",
    ],
    "social_sciences": [
        "econometrics", "high_school_geography", "high_school_government_and_politics",
        "high_school_macroeconomics", "high_school_microeconomics", "high_school_psychology",
        "human_sexuality", "professional_psychology", "public_relations", "security_studies",
        "sociology", "us_foreign_policy",
    ],
    "other": [
        "business_ethics", "clinical_knowledge", "college_medicine", "global_facts", "human_aging",
        "management", "marketing", "medical_genetics", "miscellaneous", "nutrition",
        "professional_accounting", "professional_medicine", "virology",
    ],
}
SUBJECTS: tuple[str, ...] = tuple(sorted(s for subjects in CATEGORIES.values() for s in subjects))


def description(subject: str) -> str:
    """lm-eval's per-subject ``description`` (the same text for all 57 yaml files)."""
    return f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}.\n\n"


def format_question(doc: dict[str, Any]) -> str:
    """lm-eval's ``doc_to_text`` Jinja template, rendered in Python."""
    c = doc["choices"]
    return f"{doc['question'].strip()}\nA. {c[0]}\nB. {c[1]}\nC. {c[2]}\nD. {c[3]}\nAnswer:"


def build_prompt(subject: str, shots: list[dict[str, Any]], doc: dict[str, Any]) -> str:
    """Description, then each shot + target delimiter " " + letter + fewshot delimiter "\\n\\n", then the question."""
    examples = "".join(f"{format_question(s)} {LETTERS[s['answer']]}\n\n" for s in shots)
    return description(subject) + examples + format_question(doc)


def parse_csv(text: str, source: str, subject: str) -> list[dict[str, Any]]:
    """Rows of a Hendrycks CSV (no header, answer A-D) or the header + index (0-3) variant.

    Returns docs shaped like the hub's ``cais/mmlu`` rows, so all sources look alike.
    """
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    docs: list[dict[str, Any]] = []
    line = 1
    while True:
        start = line
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            raise HarnessError(f"{source} line {reader.line_num}: malformed CSV ({e})") from None
        line = reader.line_num + 1
        if not row or (start == 1 and [f.strip().lower() for f in row] == _HEADER):
            continue
        if len(row) != 6:
            raise HarnessError(
                f"{source} line {start}: expected 6 fields (question, 4 choices, answer), got {len(row)}"
            )
        ans = row[5].strip()
        if ans in LETTERS:
            idx = LETTERS.index(ans)
        elif ans in ("0", "1", "2", "3"):
            idx = int(ans)
        else:
            raise HarnessError(f"{source} line {start}: answer {row[5]!r} is not one of A-D or 0-3")
        docs.append({"question": row[0], "subject": subject, "choices": row[1:5], "answer": idx})
    return docs


class MMLU(Benchmark):
    """57-subject multiple choice; ``mmlu:<subject>``; groups are lm-eval's four categories."""

    name = "mmlu"
    version = "1"
    description = "MMLU, 57 subjects, multiple choice (lm-eval `mmlu` prompt and acc, 5-shot from dev)"
    metrics = (Metric("acc", "binary", True, "argmax loglikelihood of ' A'..' D' is the gold letter"),)
    subsets = SUBJECTS
    default_num_fewshot = NUM_FEWSHOT
    groups = CATEGORIES

    def instances(self, config: BenchmarkConfig) -> Iterator[Instance]:
        subjects = select_subsets(self.name, config.subsets, self.subsets, self.default_subsets, self.groups)
        k = NUM_FEWSHOT if config.num_fewshot is None else config.num_fewshot
        if k < 0:
            raise HarnessError(f"mmlu: --num-fewshot must be >= 0, got {k}")
        root = data_dir(config, self.name)
        source = "dir" if root is not None else "hub" if config.full else "bundled"
        limit = effective_limit(config, source == "bundled", DEFAULT_LIMIT)
        for subject in subjects:
            shots: list[dict[str, Any]] = []
            if k:
                dev = self._load(subject, "dev", source, root)
                if k > len(dev):
                    raise HarnessError(f"mmlu:{subject}: --num-fewshot {k} but the dev split has {len(dev)} rows")
                shots = dev[:k]  # lm-eval fewshot_config sampler: first_n
            for i, doc in enumerate(take(self._load(subject, "test", source, root), limit)):
                prompt = build_prompt(subject, shots, doc)
                yield Instance(
                    doc_id=f"{subject}/{i}", subset=subject, doc=doc, prompt=prompt,
                    target=LETTERS[doc["answer"]],
                    requests=[LoglikelihoodRequest(prompt, " " + letter) for letter in LETTERS],
                )

    def _load(self, subject: str, split: str, source: str, root: Path | None) -> list[dict[str, Any]]:
        """One split of one subject from the bundled data, ``--data-dir`` or the hub."""
        if source == "hub":
            return load_hub(self.name, HUB_PATH, subject, split)
        if source == "bundled":  # the dev split as is; the whole test split, gzipped, in full/
            path = bundled("mmlu", "full", f"{subject}_test.csv.gz") if split == "test" else \
                bundled("mmlu", split, f"{subject}_{split}.csv")
            return parse_csv(read_text(path, "mmlu bundled data"), str(path), subject)
        assert root is not None
        if root.is_dir() and not (root / "test").is_dir() and (root / "data" / "test").is_dir():
            root = root / "data"  # the extracted Hendrycks tarball
        path = root / split / f"{subject}_{split}.csv"
        if not path.is_file():
            raise HarnessError(
                f"--data-dir mmlu: {path} not found "
                f"(expected dev/<subject>_dev.csv and test/<subject>_test.csv as in the Hendrycks data)"
            )
        return parse_csv(read_text(path, "mmlu data"), str(path), subject)

    def process(self, instance: Instance, responses: list) -> dict[str, Any]:
        results: list[LoglikelihoodResult] = responses
        lls = [r.logprob for r in results]
        pred = max(range(len(lls)), key=lls.__getitem__)  # first maximum on ties, as numpy.argmax
        return {
            "answer": LETTERS[pred],
            "scores": {"acc": float(pred == instance.doc["answer"])},
            "loglikelihoods": lls,
        }


@hookimpl
def register_benchmarks(register):
    register(MMLU())
