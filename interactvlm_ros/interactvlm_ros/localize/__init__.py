"""Localize: LLaVA + SAM on the rendered views -> per-view mask logits (InteractVLM stage 2)."""
