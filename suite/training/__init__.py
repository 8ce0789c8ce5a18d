"""Training: the one trainer (loop), its throughput clock, checkpoints, and the
replica abstraction (Horovod lives only in `horovod`)."""
