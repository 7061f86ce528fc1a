"""A custom executor written with meseta.client (run by the agent as a process)."""

import asyncio

from meseta.client import Executor, ExecutorDriver


class Echo(Executor):
    async def launch_task(self, driver: ExecutorDriver, task: dict) -> None:
        await driver.send_status_update({"task_id": task["task_id"], "state": "TASK_RUNNING"})
        await driver.send_status_update({"task_id": task["task_id"], "state": "TASK_FINISHED"})

    async def framework_message(self, driver: ExecutorDriver, data: bytes) -> None:
        await driver.send_framework_message(b"echo:" + data)

    async def shutdown(self, driver: ExecutorDriver) -> None:
        await driver.stop()


asyncio.run(ExecutorDriver(Echo()).run())
