"""Engines: the compiled insertion kernel, greedy insertion, ruin-and-recreate, OR-Tools and the
search that chains them; each turns a Problem into routes (no processes, no budget policy)."""
