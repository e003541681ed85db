"""The runtime that owns a request's path: time budget, zones, worker processes, engine choice,
shedding and fallbacks (:func:`solver.runtime.dispatch.solve`)."""
