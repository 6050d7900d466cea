"""Hyperparameter sweeps stored in Optuna: search spaces, the runner, results and their analysis."""
