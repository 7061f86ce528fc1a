"""The jobs scheduler's I/O: the framework shell (actor) and the Chronos REST API."""
