"""Training: recipes of phases, data, the loop, checkpoints, run bookkeeping, workers."""
