"""The built-in prompt formats' names, importable without Jinja2 (the CLI's help text needs them)."""
BUILTIN_FORMATS = {
    "alpaca": "LLMs-from-scratch ch07 Alpaca prompt (### Instruction / ### Input / ### Response)",
    "phi3": "LLMs-from-scratch ch07 exercise 7.1 Phi-3-style prompt (<|user|> ... <|assistant|>:)",
    "phi3-caps": "as phi3 with <|User|> / <|Assistant|> tags",
    "phi3-chat": "Phi-3's own chat template (<|user|>\\n...<|end|>\\n<|assistant|>\\n)",
    "chatml": "ChatML as in SmolLM2-Instruct's chat template (<|im_start|>role ... <|im_end|>)",
}
DEFAULT_FORMAT = "alpaca"
