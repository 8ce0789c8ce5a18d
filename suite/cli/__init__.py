"""The `genbench` command: plan | run | submit | status | show | report, its console tables,
preflight checks and progress display. The top room: may import everything, analysis too."""
