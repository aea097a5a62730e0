"""Prompt formats as Jinja2 templates (built-in ones live in ``templates/*.jinja``).

One template renders both texts training needs, so they cannot drift apart:

* the **prompt** (``output`` is none): everything up to and including the response
  marker; this is what a model sees at inference time;
* the **full text** (``output`` given): prompt + answer + the format's end marker.

Variables: ``instruction``, ``input``, ``output`` (none for the prompt), ``messages``
(the turns before the answer, ``[{"role", "content"}]``), ``system`` and
``add_generation_prompt`` (true for the prompt). Whatever a template renders after
``output`` (ChatML's ``<|im_end|>``) becomes a stop string for generation.

User templates are rendered in Jinja's immutable sandbox with undefined variables
as errors: a checkpoint carries its template text, and checkpoints get shared.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..errors import HarnessError, did_you_mean
from .example import Example, example_from_alpaca
from .names import BUILTIN_FORMATS, DEFAULT_FORMAT

TEMPLATES = Path(__file__).resolve().parent / "templates"
_SENTINEL = "\x00HARNESS-OUTPUT\x00"
_VARIABLES = "instruction, input, output, messages, system, add_generation_prompt"


def _env() -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=False,
                                         autoescape=False)


@dataclass
class PromptFormat:
    """A compiled prompt template. ``name`` is a built-in name or ``custom:<file>``."""

    name: str
    source: str
    builtin: bool = False
    end: str = ""  # what the template renders after the answer
    stop: tuple[str, ...] = ()
    uses_messages: bool = False
    _template: Template | None = field(default=None, repr=False)

    def _render(self, ex: Example, output: str | None) -> str:
        if not self.uses_messages and ex.chat and [m["role"] for m in ex.messages] != ["user"]:
            raise HarnessError(f"template {self.name}: record {ex.index} is a multi-turn or system chat record, "
                               "which this format cannot show; use --format chatml or phi3-chat")
        assert self._template is not None
        try:
            return self._template.render(
                instruction=ex.instruction, input=ex.input, output=output, messages=ex.messages,
                system=ex.system, add_generation_prompt=output is None)
        except Exception as e:  # a user template can raise anything: 1 // 0, errors of filters, ...
            raise HarnessError(f"template {self.name}: cannot render record {ex.index} "
                               f"({type(e).__name__}: {e}); fix the template (variables: {_VARIABLES})") from None

    def prompt(self, ex: Example) -> str:
        """The prompt up to and including the response marker."""
        return self._render(ex, None)

    def texts(self, ex: Example) -> tuple[str, str]:
        """``(prompt, full)``; the full text must extend the prompt so masking is exact."""
        prompt, full = self._render(ex, None), self._render(ex, ex.output)
        if not full.startswith(prompt):
            raise HarnessError(f"template {self.name}: for record {ex.index} the full text does not start with "
                               "the prompt; render the same prompt whether or not `output` is set")
        return prompt, full

    def config(self) -> dict[str, Any]:
        """What a checkpoint records so `harness run`/`generate` prompt it the same way."""
        cfg: dict[str, Any] = {"prompt_format": self.name}
        if not self.builtin:
            cfg["prompt_template"] = self.source
        return cfg


def compile_format(source: str, name: str, builtin: bool = False) -> PromptFormat:
    """Compile template text and probe it once (syntax, prefix rule, end marker)."""
    env = _env()
    try:
        template = env.from_string(source)
        used = meta.find_undeclared_variables(env.parse(source))
    except TemplateSyntaxError as e:
        raise HarnessError(f"template {name}: syntax error at line {e.lineno} ({e.message}); "
                           "fix the Jinja2 template") from None
    if "output" not in used:
        raise HarnessError(f"template {name}: never uses `output`; render the answer after the response "
                           "marker when `output` is not none")
    fmt = PromptFormat(name=name, source=source, builtin=builtin, _template=template,
                       uses_messages=bool(used & {"messages", "system"}))
    probe = example_from_alpaca("Say hi.", "", _SENTINEL, index=-1)
    try:
        prompt, full = fmt.texts(probe)
    except HarnessError as e:
        raise HarnessError(str(e).replace("record -1", "a probe record")) from None
    if _SENTINEL not in full[len(prompt):]:
        raise HarnessError(f"template {name}: does not render `output` after the prompt; "
                           "put {{ output }} after the response marker")
    fmt.end = full.split(_SENTINEL, 1)[1]
    fmt.stop = (fmt.end.strip(),) if fmt.end.strip() else ()
    return fmt


@cache
def _builtin(name: str) -> PromptFormat:
    return compile_format((TEMPLATES / f"{name}.jinja").read_text(encoding="utf-8"), name, builtin=True)


def load_template_file(path: str | Path) -> PromptFormat:
    p = Path(path).expanduser()
    try:
        source = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise HarnessError(f"--template {p}: cannot read ({getattr(e, 'strerror', None) or e}); "
                           "pass a readable .jinja file") from None
    return compile_format(source, f"custom:{p.name}")


def get_format(name: str | None = None, template_file: str | Path | None = None) -> PromptFormat:
    """Resolve ``--format NAME`` / ``--template FILE`` (a ``.jinja`` path also works as a name)."""
    if template_file is not None:
        return load_template_file(template_file)
    name = name or DEFAULT_FORMAT
    if name in BUILTIN_FORMATS:
        return _builtin(name)
    if name.endswith((".jinja", ".j2", ".jinja2")) or Path(name).is_file():
        return load_template_file(name)
    raise HarnessError(f"unknown --format {name!r}{did_you_mean(name, BUILTIN_FORMATS)}; choose one of "
                       f"{', '.join(BUILTIN_FORMATS)} or pass a template file with --template FILE.jinja")


def resolve_format(format_name_or_text: str | PromptFormat) -> PromptFormat:
    """A built-in name, a template file path, or template text (as stored in a checkpoint)."""
    if isinstance(format_name_or_text, PromptFormat):
        return format_name_or_text
    s = format_name_or_text
    if "{{" in s or "{%" in s:
        return _compiled_text(s)
    return get_format(s)


@lru_cache(maxsize=32)
def _compiled_text(source: str) -> PromptFormat:
    return compile_format(source, "custom:template")


def format_from_config(cfg: dict[str, Any] | None) -> PromptFormat | None:
    """The format a checkpoint's config (or ``ModelInfo.extra``) records, or None."""
    if not cfg:
        return None
    if cfg.get("prompt_template"):
        fmt = _compiled_text(cfg["prompt_template"])
        return PromptFormat(**{**fmt.__dict__, "name": cfg.get("prompt_format") or fmt.name})
    if cfg.get("prompt_format"):
        return get_format(cfg["prompt_format"])
    return None


def format_prompt(format_name_or_text: str | PromptFormat, instruction: str, input: str = "") -> str:
    """Render the inference prompt of one instruction in a format (for the engine and generate)."""
    return resolve_format(format_name_or_text).prompt(example_from_alpaca(instruction, input, ""))
