"""Foundation every room may use: user-facing errors and message helpers, atomic file
writes, the generic registry, progress events and timestamps. Imports nothing else of genbench."""
