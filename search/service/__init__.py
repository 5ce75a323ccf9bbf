"""Runs trials against a study: the Optuna objective, the local search and the distributed
worker, the reaper, the storage, and the writers of what a trial leaves besides its attrs
(checkpoints, the range test's artifacts, dashboard notes)."""
