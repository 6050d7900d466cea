"""Transfer strategies (model.strategy), registered by name with what other code asks of them:
whether layers are frozen, whether only the head trains on features computed once, whether the
set of trainable parameters changes during the run. The allowed names are read from here."""
from ..core.registry import Registry

STRATEGIES: Registry[str] = Registry("model.strategy")

STRATEGIES.register("scratch")("random weights; every layer trains")
STRATEGIES.register("finetune")("every layer trains from the pretrained weights (the default with model.pretrained)")
STRATEGIES.register("freeze", freezes=True)("only the parameters named by model.trainable train")
# two-phase: a parameter without a gradient in the first phase must be expected by DDP
STRATEGIES.register("two-phase", changes_trainable=True)("the head alone for model.head_epochs, then every layer")
# linear-probe: each image's features are computed once by the frozen body, so it runs in seconds on
# one process and cannot augment
STRATEGIES.register("linear-probe", freezes=True, head_only=True, features_once=True)(
    "the head alone trains, on the frozen body's features computed once per image")


def strategy_attr(model_cfg, key: str, default=None):
    """An attribute of the config's model.strategy (`default` when no strategy is set)."""
    return default if model_cfg.strategy is None else STRATEGIES.attr(model_cfg.strategy, key, default)
