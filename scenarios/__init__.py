"""Scenario files (a campus peak period as orders and riders over time): the model and its
JSON form, the generator, MDRP instances as scenarios, replays (:mod:`scenarios.replay`), the
parameter tuner, and their subcommands. Never imports server/: replays through the service go
through the :mod:`api` client."""
