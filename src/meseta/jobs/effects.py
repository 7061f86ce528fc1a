"""How the jobs machine uses framework.effects, and the kinds of state it stores.

    Store   always synchronous: a run is stored as LAUNCHING before its Launch, so that with
            ZooKeeper a deposed leader (its write fenced) never starts a run
    Launch  refuse_seconds 0
    Emit    a missed, skipped, failed or timed-out run: logged and kept for GET /v1/scheduler/events

The durable kinds (runtime.kv_store holds them)::

    job    <name>      {"spec": <job JSON>, "schedule_after": t, "last_success": t, "last_error": t,
                        "missed_count": n, "skipped_count": n, "parents_done": [...], "history": [...]}
    run    <task id>   a run that is queued, launching or active (runs.Run)
    meta   framework_id
"""

from __future__ import annotations

KINDS = ("job", "run", "meta")
