"""The codec: pre-editor, transforms, gains, entropy models, integer entropy-parameter network."""
