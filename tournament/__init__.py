"""The tournament: configuration, the sweep, executors, resumable runs and the CLI."""
