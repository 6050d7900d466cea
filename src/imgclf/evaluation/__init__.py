"""Metrics and evaluation of a model on a split."""
from .evaluate import evaluate_split
from .metrics import confusion_matrix, per_class_accuracy, topk_correct

__all__ = ["evaluate_split", "confusion_matrix", "per_class_accuracy", "topk_correct"]
