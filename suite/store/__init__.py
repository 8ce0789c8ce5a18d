"""The results store: column names (schema), result files, one trial's directory
(TrialStore), its lease, trial states and a sweep's status. May import: common."""
