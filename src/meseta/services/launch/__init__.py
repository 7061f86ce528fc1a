"""Putting instances on offers (pure): matching, constraints, backoff and the offers phase.

    offer --offer_matching.match(app, offer, placed)--> Match (Placement | reasons)
    constraints: UNIQUE, CLUSTER, GROUP_BY...; backoff: launch delays after failures
    task_builder: Placement -> TaskInfo; launch_stats: the /v2/queue offer funnel
    offer_handling: the machine's offers phase (a mixin of ServicesMachine)
"""
