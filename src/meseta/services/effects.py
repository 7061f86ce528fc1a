"""What the services machine asks its shell to do: framework.effects, as Marathon uses them.

    Store(sync=False)  a status update's record (Mesos keeps the task's state, reconciliation
                       restores it)
    Launch             refuse_seconds 0: what is left is offered again at the next allocation
    Emit               an event on /v2/events
"""

from __future__ import annotations

from meseta.framework.effects import (
    Change,
    Decline,
    Effect,
    Emit,
    Kill,
    Launch,
    Reconcile,
    Revive,
    Store,
    Suppress,
)

__all__ = ["KINDS", "Change", "Decline", "Effect", "Emit", "Kill", "Launch", "Reconcile", "Revive", "Store",
           "Suppress"]

# The durable kinds (runtime.kv_store holds them):
#   app           /prod/web            the current normalised app definition
#   app_version   /prod/web@<version>  every stored version (rollback, GET .../versions)
#   group         /prod                {"dependencies": [...], "version": ...}
#   group_version /prod@<version>      {"apps": {id: app version}, "groups": {id: dependencies}}
#   deployment    <plan id>            a running deployment plan (resumed by a new leader)
#   instance      <task id>            an Instance record
#   meta          framework_id         the framework id (re-subscribed with after failover)
KINDS = ("app", "app_version", "group", "group_version", "deployment", "instance", "meta")


