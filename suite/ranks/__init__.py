"""How a rank starts and where it runs: the rank entry point (`python -m suite.ranks.entry`),
its environment, Slurm variables, rendezvous, child processes and core binding. May import
every room below it (common .. trial); Horovod only through training.horovod, lazily."""
