"""vlmpress training: teachers, networks, losses, data, training loop, export."""
