"""Fine-tuning data, prompt formats, split and collate: no model, all hand-checkable."""
from __future__ import annotations

import json

import jinja2
import pytest
import torch

from harness.errors import HarnessError
from harness.finetune.collate import Encoded, collate, encode_example
from harness.finetune.data import default_data_path, example_from_alpaca, load_examples
from harness.finetune.split import split_indices
from harness.prompts import BUILTIN_FORMATS, format_from_config, format_prompt, get_format

SMOLLM2_CHAT_TEMPLATE = (  # tokenizer.chat_template of SmolLM2-135M-Instruct's GGUF
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


def ch07_format_input(entry: dict) -> str:
    """LLMs-from-scratch ch07 ``format_input``, verbatim semantics."""
    text = ("Below is an instruction that describes a task. Write a response that appropriately completes "
            f"the request.\n\n### Instruction:\n{entry['instruction']}")
    return text + (f"\n\n### Input:\n{entry['input']}" if entry["input"] else "")


def write(tmp_path, name, content):
    p = tmp_path / name
    p.write_text(content if isinstance(content, str) else json.dumps(content))
    return p


# ---- data ----------------------------------------------------------------------------
def test_bundled_data_loads():
    examples, name = load_examples(None)
    assert len(examples) == 1100 and name == str(default_data_path())
    assert sum(bool(e.input) for e in examples) == 325


def test_jsonl_and_chat_records(tmp_path):
    p = write(tmp_path, "d.jsonl", '{"instruction": "a", "output": "b"}\n\n'
              '{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"},'
              ' {"role": "assistant", "content": "x"}]}\n')
    (a, c), _ = load_examples(str(p))
    assert (a.instruction, a.input, a.output, a.chat) == ("a", "", "b", False)
    assert (c.instruction, c.output, c.system, c.chat) == ("u", "x", "s", True)


@pytest.mark.parametrize("records, match", [
    ([{"instruction": "a", "output": "b"}, {"instruction": "c", "input": ""}], r"d\.json: record 1, field 'output': missing"),
    ([{"instruction": "a", "output": 3}], r"record 0, field 'output': expected a string"),
    ([{"instruction": "", "output": "x"}], r"record 0, field 'instruction': empty"),
    ([{"messages": [{"role": "user", "content": "u"}]}], r"messages\[0\]\.role': the last turn must be"),
    ([{"messages": [{"role": "bot", "content": "u"}]}], r"messages\[0\]\.role': 'bot' is not one of"),
    ([7, {"output": "x"}], r"record 0, field '\(record\)'.*\(1 more bad record\)"),
])
def test_bad_records_name_index_and_field(tmp_path, records, match):
    p = write(tmp_path, "d.json", records)
    with pytest.raises(HarnessError, match=match) as exc:
        load_examples(str(p))
    assert "\n" not in str(exc.value)


def test_bad_json_and_missing_file(tmp_path):
    with pytest.raises(HarnessError, match=r"bad\.json: not valid JSON at line 1"):
        load_examples(str(write(tmp_path, "bad.json", "[{")))
    with pytest.raises(HarnessError, match=r"bad\.jsonl line 2: invalid JSON"):
        load_examples(str(write(tmp_path, "bad.jsonl", '{"instruction": "a", "output": "b"}\n{\n')))
    with pytest.raises(HarnessError, match="no such file or directory"):
        load_examples(str(tmp_path / "nope.json"))


def test_limit_keeps_first_records():
    examples, _ = load_examples(None, limit=3)
    assert [e.index for e in examples] == [0, 1, 2]


# ---- formats -------------------------------------------------------------------------
def test_alpaca_and_phi3_match_ch07_on_all_bundled_records():
    raw = json.loads(default_data_path().read_text())
    examples, _ = load_examples(None)
    alpaca, phi3 = get_format("alpaca"), get_format("phi3")
    for entry, ex in zip(raw, examples):
        prompt = ch07_format_input(entry) + "\n\n### Response:\n"
        assert alpaca.texts(ex) == (prompt, prompt + entry["output"])
        phi = f"<|user|>\n{entry['instruction']}" + (f"\n{entry['input']}" if entry["input"] else "")
        assert phi3.texts(ex) == (phi + "\n<|assistant|>:\n", phi + "\n<|assistant|>:\n" + entry["output"])
    assert alpaca.stop == () and phi3.stop == ()


def test_chatml_is_smollm2s_chat_template():
    hf = jinja2.Environment().from_string(SMOLLM2_CHAT_TEMPLATE)
    fmt = get_format("chatml")
    examples, _ = load_examples(None, limit=40)
    for ex in examples:
        assert fmt.prompt(ex) == hf.render(messages=ex.messages, add_generation_prompt=True)
        full = hf.render(messages=ex.messages + [{"role": "assistant", "content": ex.output}])
        assert fmt.texts(ex)[1] + "\n" == full
    assert fmt.stop == ("<|im_end|>",)


def test_phi3_variants():
    ex = example_from_alpaca("Name a colour.", "", "Red.")
    assert get_format("phi3-caps").texts(ex)[1] == "<|User|>\nName a colour.\n<|Assistant|>:\nRed."
    assert get_format("phi3-chat").texts(ex)[1] == "<|user|>\nName a colour.<|end|>\n<|assistant|>\nRed.<|end|>"
    assert get_format("phi3-chat").stop == ("<|end|>",)


def test_format_prompt_and_config_round_trip(tmp_path):
    assert format_prompt("alpaca", "Hi", "x").endswith("### Instruction:\nHi\n\n### Input:\nx\n\n### Response:\n")
    user = write(tmp_path, "mine.jinja", "Q: {{ instruction }}\nA:{% if output is not none %} {{ output }}<END>{% endif %}")
    fmt = get_format(template_file=str(user))
    assert fmt.name == "custom:mine.jinja" and fmt.stop == ("<END>",)
    cfg = fmt.config()
    assert cfg == {"prompt_format": "custom:mine.jinja", "prompt_template": user.read_text()}
    assert format_prompt(cfg["prompt_template"], "Hi") == "Q: Hi\nA:"
    assert format_from_config(cfg).prompt(example_from_alpaca("Hi")) == "Q: Hi\nA:"
    assert format_from_config({"prompt_format": "chatml"}).name == "chatml"
    assert format_from_config({"prompt_format": None}) is None


def test_unknown_format_suggests_close_names():
    with pytest.raises(HarnessError, match=r"unknown --format 'alpacca' \(did you mean 'alpaca'\?\)"):
        get_format("alpacca")
    assert set(BUILTIN_FORMATS) >= {"alpaca", "phi3", "phi3-caps", "chatml"}


@pytest.mark.parametrize("source, match", [
    ("{{ instruction }", r"template custom:t\.jinja: syntax error at line 1"),
    ("{{ instruction }}", r"never uses `output`"),
    ("{{ instruction.nope }}{{ output }}", r"cannot render a probe record \(UndefinedError"),
    ("{% if output is none %}P:{% endif %}{{ instruction }}{{ output or '' }}", r"does not start with the prompt"),
])
def test_template_errors_name_the_template(tmp_path, source, match):
    with pytest.raises(HarnessError, match=match):
        get_format(template_file=str(write(tmp_path, "t.jinja", source)))


def test_template_render_error_names_the_record(tmp_path):
    t = write(tmp_path, "t.jinja", "{{ instruction }}{% if input %}{{ input | int(strict=true) + 1 }}"
              "{% endif %}\n{{ output or '' }}")
    fmt = get_format(template_file=str(t))
    bad = example_from_alpaca("x", "not a number", "y", index=42)
    bad.input = {"a": 1}  # type: ignore[assignment]  # int filter on a dict fails at render time
    with pytest.raises(HarnessError, match=r"template custom:t\.jinja: cannot render record 42"):
        fmt.texts(bad)


def test_multi_turn_chat_needs_a_chat_format():
    ex = example_from_alpaca("u", "", "a")
    ex.chat, ex.messages = True, [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    with pytest.raises(HarnessError, match="use --format chatml"):
        get_format("alpaca").prompt(ex)
    assert get_format("chatml").prompt(ex).startswith("<|im_start|>system\ns<|im_end|>\n<|im_start|>user\nu")


# ---- split ---------------------------------------------------------------------------
def test_split_sizes_match_ch07_and_are_seeded():
    s = split_indices(1100)
    assert (len(s.train), len(s.val), len(s.test)) == (935, 55, 110)
    assert sorted(s.train + s.val + s.test) == list(range(1100))
    assert split_indices(1100).test == s.test and split_indices(1100, seed=1).test != s.test
    assert (len(split_indices(200).train), len(split_indices(200).test)) == (170, 20)
    with pytest.raises(HarnessError, match="too few"):
        split_indices(1)
    with pytest.raises(HarnessError, match="below 1"):
        split_indices(100, 0.5, 0.5)


# ---- collate -------------------------------------------------------------------------
def test_collate_matches_ch07_example():
    """The book's three-sample batch (inputs 0-4, 5-6, 7-9), pad/eot 50256."""
    batch = [Encoded([0, 1, 2, 3, 4], 0), Encoded([5, 6], 0), Encoded([7, 8, 9], 0)]
    x, y = collate(batch, 50256)
    assert x.tolist() == [[0, 1, 2, 3, 4], [5, 6, 50256, 50256, 50256], [7, 8, 9, 50256, 50256]]
    assert y.tolist() == [[1, 2, 3, 4, 50256], [6, 50256, -100, -100, -100], [8, 9, 50256, -100, -100]]


def test_collate_truncation_after_padding():
    batch = [Encoded([0, 1, 2, 3, 4], 0), Encoded([5, 6], 0)]
    x, y = collate(batch, 9, max_length=3)
    assert x.tolist() == [[0, 1, 2], [5, 6, 9]]
    assert y.tolist() == [[1, 2, 3], [6, 9, -100]]
    x, y = collate([Encoded([5, 6], 0)], 9, max_length=10)  # a cap above the batch changes nothing
    assert (x.tolist(), y.tolist()) == ([[5, 6]], [[6, 9]])


def test_collate_masks_the_prompt_up_to_the_marker():
    # prompt = 3 tokens (instruction + marker), response = 2 tokens
    batch = [Encoded([10, 11, 12, 20, 21], 3), Encoded([10, 12, 20], 2)]
    x, y = collate(batch, 0, mask_instruction=True)
    assert x.tolist() == [[10, 11, 12, 20, 21], [10, 12, 20, 0, 0]]
    # targets predicting prompt tokens 11, 12 (row 0) and 12 (row 1) are ignored; 20 onward is learnt
    assert y.tolist() == [[-100, -100, 20, 21, 0], [-100, 20, 0, -100, -100]]
    x, y = collate(batch, 0, mask_instruction=True, max_length=2)
    assert y.tolist() == [[-100, -100], [-100, 20]]


def test_collate_keeps_an_end_token_inside_the_text():
    """ChatML with SmolLM2: <|im_end|> (id 2) is the end token *and* part of the prompt."""
    batch = [Encoded([1, 5, 2, 1, 6, 7, 2], 4), Encoded([1, 5, 2], 1)]
    x, y = collate(batch, 2)
    assert x.tolist() == [[1, 5, 2, 1, 6, 7], [1, 5, 2, 2, 2, 2]]
    assert y.tolist() == [[5, 2, 1, 6, 7, 2], [5, 2, -100, -100, -100, -100]]


class CharTokenizer:
    """One token per character (ord), eot 0: makes encode_example checkable by hand."""

    eot_id, bos_id, add_bos = 0, 1, False

    def encode(self, text: str) -> list[int]:
        return [ord(c) for c in text]


def test_encode_example_splits_prompt_and_answer(tmp_path):
    t = write(tmp_path, "t.jinja", "{{ instruction }}>{% if output is not none %}{{ output }}{% endif %}")
    fmt = get_format(template_file=str(t))
    enc = encode_example(CharTokenizer(), fmt, example_from_alpaca("ab", "", "c"))
    assert (enc.ids, enc.prompt_len) == ([97, 98, 62, 99], 3)
    tok = CharTokenizer()
    tok.add_bos = True
    enc = encode_example(tok, fmt, example_from_alpaca("ab", "", "c"))
    assert (enc.ids, enc.prompt_len) == ([1, 97, 98, 62, 99], 4)
    x, y = collate([enc], 0, mask_instruction=True)
    assert y.tolist() == [[-100, -100, -100, 99, 0]]
    assert isinstance(x, torch.Tensor) and x.dtype == torch.long
