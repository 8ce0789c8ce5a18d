"""What a process runs on: the machine description a row records, the cores it may use,
its TensorFlow threads, and its peak FLOP/s. May import: common, store.schema."""
