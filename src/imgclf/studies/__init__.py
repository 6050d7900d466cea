"""Studies: the course's comparisons as one file and one command (`imgclf study NAME`)."""
from .runner import plan, run_study  # noqa: F401
from .spec import StudySpec, find_study, load_study, ready_studies  # noqa: F401
