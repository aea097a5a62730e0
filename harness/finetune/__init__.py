"""Instruction fine-tuning: data, the -100-masking collate, the training loop, LoRA, resume.

Prompt formats live in :mod:`harness.prompts` (the engine, serve and generate use them too).
"""
