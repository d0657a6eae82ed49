"""Structured outputs of AI assistants and chat tools: promoted into cases by rule, or kept as advisories."""
