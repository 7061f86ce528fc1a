"""Service discovery around the master: ``dns`` (Mesos-DNS names served from the operator event
stream) and ``lb`` (HAProxy driven through its runtime API)."""
