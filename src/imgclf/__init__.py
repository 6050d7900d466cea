"""imgclf: train, compare, evaluate and summarise image classifiers on an ordinary machine."""
from .api import Run, evaluate, export, load_run, predict, run_study, train
from .config.load import from_dict, load_config
from .config.schema import ExperimentConfig
from .core.errors import BudgetError, ConfigError, DataError, ImgclfError, RunError
from .models import MODELS, build_model
from .models.summary import format_summary, summarize
from .sweeps.analysis import sweep_results

__version__ = "0.1.0"
__all__ = [
    "Run", "train", "evaluate", "predict", "load_run", "export", "run_study", "ExperimentConfig", "load_config", "from_dict",
    "ImgclfError", "ConfigError", "DataError", "BudgetError", "RunError", "MODELS", "build_model",
    "summarize", "format_summary", "sweep_results",
]
