"""One trial in one process: run_trial (data -> model -> train loop -> metrics -> store),
its context, the row columns it writes, and milestone evaluation. May import every room
below launchers (common, store, machine, data, models, metrics, training, sweep, artifacts)."""
