"""``meseta lb``: a real HAProxy driven from the services scheduler, the way marathon-lb does it.

    services /v2/apps?embed=apps.tasks ---> model.build (pure) ---> Model (frontends, backends, servers)
    services /v2/events (SSE) --trigger-->      |                      |
                                                v                      v
                                 plan.place (slots) ---> plan.diff (old, new) -> runtime commands | reload
                                                                       |
                                 haproxy.py: master-worker HAProxy, runtime API (stats socket), seamless reload
                                 driver.py: the loop; drain protocol with the services scheduler

Pure: ``labels``, ``model``, ``render``, ``plan``. I/O: ``haproxy``, ``feed``, ``driver``.
"""
