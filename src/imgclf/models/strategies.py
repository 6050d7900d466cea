"""Transfer strategies (model.strategy), registered by name with what other code asks of them:
whether the weights start random, whether they must be pretrained, whether layers are frozen and
model.trainable names what trains, whether only the head trains on features computed once,
whether the head trains alone first, whether the set of trainable parameters changes during the
run, and which strategy a config without model.strategy trains by. The allowed names are read
from here; no other code spells them."""
from ..core.registry import Registry

STRATEGIES: Registry[str] = Registry("model.strategy")

# default_for: the strategy of a config without model.strategy, with pretrained weights (True) or without (False)
STRATEGIES.register("scratch", random_weights=True, default_for=False)("random weights; every layer trains")
STRATEGIES.register("finetune", default_for=True)(
    "every layer trains from the pretrained weights (the default with model.pretrained)")
STRATEGIES.register("freeze", freezes=True, takes_trainable=True)("only the parameters named by model.trainable train")
# two-phase: a parameter without a gradient in the first phase must be expected by DDP
STRATEGIES.register("two-phase", head_first=True, changes_trainable=True)(
    "the head alone for model.head_epochs, then every layer")
# linear-probe: each image's features are computed once by the frozen body, so it runs in seconds on
# one process and cannot augment
STRATEGIES.register("linear-probe", needs_pretrained=True, freezes=True, head_only=True, features_once=True)(
    "the head alone trains, on the frozen body's features computed once per image")


def strategy_attr(model_cfg, key: str, default=None):
    """An attribute of the config's model.strategy (`default` when no strategy is set)."""
    return default if model_cfg.strategy is None else STRATEGIES.attr(model_cfg.strategy, key, default)


def has_pretrained(model_cfg) -> bool:
    """Whether the model starts from pretrained weights (model.pretrained set, and not 'none')."""
    return model_cfg.pretrained not in (None, "none")


def strategy_of(model_cfg) -> str:
    """The strategy a config trains by: its model.strategy, else the default for its weights."""
    if model_cfg.strategy is not None:
        return model_cfg.strategy
    return STRATEGIES.names(default_for=has_pretrained(model_cfg))[0]
