"""Client libraries for framework authors: an asyncio scheduler and executor for the v1 APIs.

    from meseta.client import Scheduler, SchedulerDriver, Executor, ExecutorDriver
"""

from meseta.client.executor import Executor, ExecutorDriver, parse_duration
from meseta.client.scheduler import CallError, NotConnected, Scheduler, SchedulerDriver
from meseta.client.scheduler_protocol import SchedulerProtocol, decode_data, encode_data, new_uuid

__all__ = [
    "CallError",
    "Executor",
    "ExecutorDriver",
    "NotConnected",
    "Scheduler",
    "SchedulerDriver",
    "SchedulerProtocol",
    "decode_data",
    "encode_data",
    "new_uuid",
    "parse_duration",
]
