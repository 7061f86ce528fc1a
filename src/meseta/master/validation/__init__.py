"""The master's edge: every call (scheduler, operator, agent) becomes a typed, frozen record here,
with one error style (``CallRejected`` naming the field), before any state changes or any offer is
used. The handlers of ``meseta.master.machine`` take only these records.

    errors      CallRejected, SubscribeRefused
    fields      ids, roles, durations, base64, resources, structural checks (shared rules)
    frameworks  FrameworkInfo
    tasks       TaskInfo, ExecutorInfo, task groups (TaskSpec | InvalidTask)
    scheduler   one record per scheduler call type
    operator    operator settings and agent actions
    agents      the agent protocol (registration, status updates, executor events)
"""

from meseta.master.validation.errors import CallRejected, SubscribeRefused

__all__ = ["CallRejected", "SubscribeRefused"]
