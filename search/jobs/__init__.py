"""One-shot commands that are not a search: export the best designs, retrain one, run a
single range test."""
