"""Balanced accuracy and macro-F1 from a confusion matrix agree with scikit-learn's."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import balanced_accuracy_score, f1_score

from imgclf.evaluation.metrics import balanced_accuracy, confusion_matrix, macro_f1


@pytest.mark.filterwarnings("ignore::UserWarning")  # scikit-learn warns of absent or single classes: the cases tested
@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=1, max_size=60))
def test_balanced_accuracy_and_macro_f1_match_scikit_learn(pairs):
    y = torch.tensor([a for a, _ in pairs])
    pred = torch.tensor([b for _, b in pairs])
    conf = confusion_matrix(pred, y, 5)
    assert abs(balanced_accuracy(conf) - balanced_accuracy_score(y, pred)) < 1e-9
    # scikit-learn's macro average over the labels present in the truth
    assert abs(macro_f1(conf) - f1_score(y, pred, average="macro", labels=sorted(set(y.tolist())),
                                         zero_division=0)) < 1e-9


def test_a_model_that_predicts_the_big_class_is_found_out():
    y = torch.tensor([0] * 95 + [1] * 5)
    conf = confusion_matrix(torch.zeros(100, dtype=torch.long), y, 2)
    assert balanced_accuracy(conf) == 0.5 and abs(macro_f1(conf) - (2 * 95 / 195) / 2) < 1e-9  # accuracy: 95%
