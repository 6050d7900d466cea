"""Training: optimizers, schedules, plugins, checkpoints and the loop."""
