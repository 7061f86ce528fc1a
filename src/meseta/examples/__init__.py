"""Example frameworks built on meseta.client that a user can copy (MapReduce)."""
