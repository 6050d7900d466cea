"""Studies: the course's comparisons as one file and one command (`imgclf study NAME`)."""
from .spec import StudySpec, find_study, load_study, ready_studies  # noqa: F401
from .runner import plan, run_study  # noqa: F401
