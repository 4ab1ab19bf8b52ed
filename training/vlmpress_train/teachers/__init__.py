"""Semantic receivers ("teachers") whose tokens and logits the codec is trained to preserve."""
