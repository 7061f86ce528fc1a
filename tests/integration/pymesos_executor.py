"""A custom executor written with the unmodified pymesos library (run by the agent)."""

from pymesos import Executor, MesosExecutorDriver, decode_data, encode_data


class EchoExecutor(Executor):
    def launchTask(self, driver, task):
        driver.sendStatusUpdate({"task_id": task["task_id"], "state": "TASK_RUNNING"})
        if decode_data(task.get("data") or "") == b"finish":
            driver.sendStatusUpdate({"task_id": task["task_id"], "state": "TASK_FINISHED"})

    def killTask(self, driver, task_id):
        driver.sendStatusUpdate({"task_id": task_id, "state": "TASK_KILLED"})

    def frameworkMessage(self, driver, message):
        driver.sendFrameworkMessage(encode_data(b"echo:" + decode_data(message)))


if __name__ == "__main__":
    MesosExecutorDriver(EchoExecutor(), use_addict=False).run()
