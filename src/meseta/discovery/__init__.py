"""Service discovery: ``meseta dns`` (Mesos-DNS names) and ``meseta lb`` (HAProxy driven by meseta services)."""
