"""Training: recipes of phases, data, the loop, checkpoints."""
