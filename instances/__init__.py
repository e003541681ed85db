"""Literature and research instances for benchmarks: Li & Lim and Solomon readers with
best-knowns and a full-precision plan check, the MDRPLIB (Grubhub) reader, and meal batches
drawn on a synthetic square or a campus. Nothing here imports :mod:`scenarios`."""
