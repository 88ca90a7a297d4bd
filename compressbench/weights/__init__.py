"""Trained default weights (float16 state dicts) and their JSON records; see compressbench.models.default_weights."""
