"""Literature and research instances for benchmarks: Li & Lim and Solomon readers with
best-knowns, the MDRP (Grubhub) reader, and meal batches drawn on a campus."""
