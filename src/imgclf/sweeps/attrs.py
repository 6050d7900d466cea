"""The names of the user attributes a sweep keeps in its Optuna study, in one place: what every
worker writes and every reader (the results, the report, the queue) reads back."""

# -- on each trial ---------------------------------------------------------------------------------
WORKER = "worker"            # "host:pid" of the worker that took the trial
ALIVE_AT = "alive_at"        # time.time() of the worker's last sign of life (s)
POINT = "point"              # the point of the space, as the worker read it
CONFIG = "config"            # the full resolved experiment config
HISTORY = "history"          # the per-epoch records
MEASURED = "measured"        # what is measured beside the epochs: params, train_seconds
METRICS = "metrics"          # the final record, the best epoch and value, why training stopped
SECONDS = "seconds"          # wall seconds the trial took
REASON = "reason"            # why a trial failed or was stopped
BATCHED = "batched"          # how many models its cohort trained as one computation
ROUND = "round"              # the strategy's round that queued it (0: the first)
RETRY_OF = "retry_of"        # the number of the trial it runs again
INTERRUPTED = "interrupted"  # its worker died; the configuration was queued again
SPURIOUS = "spurious"        # asked for when the queue was empty: no configuration, no result

# -- on the study ----------------------------------------------------------------------------------
SWEEP = "sweep"              # the sweep as created (its space is checked when a worker joins)
QUEUED = "queued"            # the creating worker has enqueued the first points
DEADLINE = "deadline"        # time.time() after which no trial starts (None: no wall budget)
