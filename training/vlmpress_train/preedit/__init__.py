"""Semantic pre-editing around a standard AV1 core: an importance-map baseline (no training), a
learned pre-editor trained with the real AVIF encoder in the forward pass, and the rate proxy that
gives the encoder a gradient. See docs/preedit.md."""
