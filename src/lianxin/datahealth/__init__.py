"""The data-health page: what each source sent per day, what was refused and why, and what the
store says about it (damaged files, late data, silent meters). For the utility's data engineer."""
