"""The services scheduler's I/O: the framework actor, the REST API, the store, the event bus and
the readiness prober. Everything here executes what the pure machine (services.machine) decides.
"""
