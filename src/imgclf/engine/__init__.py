"""Training: optimizers, schedules, callbacks, checkpoints and the loop."""
