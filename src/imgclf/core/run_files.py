"""The names of the files in a run folder, in one place (runs/<name>/...). Imports nothing, so the
models (a run as pretrained weights), the checkpoint plugin and the run folder all read them here."""

CONFIG, HISTORY, METRICS = "config.yaml", "history.jsonl", "metrics.json"
SUMMARY_TXT, SUMMARY_JSON, LOG = "summary.txt", "summary.json", "train.log"
BEST, LAST = "best.pt", "last.pt"  # the kept weights (best by the monitor) and the resumable state
CLAIM = ".claim"  # created exclusively by the process that owns a new run folder
REPORT_DIR, EXPLAIN_DIR = "report", "explain"
FOLD_STEM = "fold-"  # a cross-validation's folder holds fold-1/ ... fold-K/, each a run folder
EXPORT_STEM = "model"  # imgclf export writes model.onnx or model.pt2
EXPORT_SUFFIXES = {"onnx": ".onnx", "pt2": ".pt2"}  # export format -> file suffix


def export_name(fmt: str) -> str:
    """The default file name of an export in `fmt` (model.onnx, model.pt2)."""
    return EXPORT_STEM + EXPORT_SUFFIXES[fmt]


def is_export(path) -> bool:
    """True if `path` names an exported model file (by its suffix) rather than a run."""
    return str(path).lower().endswith(tuple(EXPORT_SUFFIXES.values()))
