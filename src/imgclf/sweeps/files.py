"""The names of the files in a sweep folder, in one place (sweeps/<name>/...); the results
files (results.json, results.csv) are core/results.py's."""

SPEC = "sweep.yaml"          # the sweep as run, its base resolved: what marks a folder as a sweep
STORAGE_URL = "storage.url"  # the database URL of a sweep that several machines share
JOURNAL = "journal.log"      # Optuna's journal file: the trials of a sweep without a database
LOG = "sweep.log"            # every worker's log lines
CLAIM_LOCK = "claim.lock"    # the file lock under which a local worker takes its trials
FIGURES = "figures"          # the folder of the sweep's figures
