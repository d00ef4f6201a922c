"""Training, export and packaging of the multi-task model (torch; never imported at run time)."""
