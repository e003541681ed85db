"""Replays: a scenario played batch by batch against a dispatch policy (in process or through
the gRPC service), with KPIs and pictures."""
