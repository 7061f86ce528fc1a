"""``POST /api/v1/executor``: the v1 executor API at the edge (spec 2.1).

    body --decode_call (typed, every field checked; 400 naming it)--> ExecutorCall
         --machine.executor_for_call--> 400 unknown framework/executor | 403 not subscribed
    SUBSCRIBE  a new event stream (closing an earlier one); SUBSCRIBED, the queued LAUNCHes and
               the re-sent unacknowledged updates follow; 200 streaming
    UPDATE     the machine checks the executor speaks for its own task; 202
    MESSAGE    to the scheduler through the master; 202
    HEARTBEAT  202
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from meseta.agent.actor import AgentActor
from meseta.agent.executor_calls import MAX_CALL_BYTES, CallInvalid, ExecutorCall, decode_call, status_json
from meseta.agent.machine import ExecutorCallRejected
from meseta.agent.runs import CustomRun
from meseta.runtime.http import HttpError, accepted, check_json_request, read_body

log = logging.getLogger(__name__)


class ExecutorEndpoint:
    def __init__(self, agent: AgentActor) -> None:
        self.agent = agent

    async def handle(self, request: Request) -> Response:
        try:
            check_json_request(request)
            call = decode_call(await read_body(request, MAX_CALL_BYTES))
            machine = self.agent.machine
            framework_id, executor_id = call.framework_id.value, call.executor_id.value
            if call.type == "SUBSCRIBE":
                return self._subscribe(machine.executor_for_call(framework_id, executor_id, subscribing=True), call)
            run = machine.executor_for_call(framework_id, executor_id)
            if call.type == "UPDATE" and call.update is not None:
                self.agent.run(machine.handle_executor_update, run, status_json(call.update.status))
            elif call.type == "MESSAGE" and call.message is not None:
                self.agent.run(machine.handle_executor_message, run, call.message.data)
        except (HttpError, CallInvalid, ExecutorCallRejected) as exc:  # each: the status and the message
            return PlainTextResponse(exc.message, status_code=exc.status)
        return accepted()

    def _subscribe(self, run: CustomRun, call: ExecutorCall) -> Response:
        stream = self.agent.open_executor_stream(run.key)
        log.info("agent %s: executor %s of %s subscribed", run.key.agent_id, run.executor_id, run.framework_id)
        # an executor subscribing again (after an agent restart) resends what it never saw
        # acknowledged; duplicates of updates the agent has are dropped by their uuid
        resent = [status_json(update.status) for update in (call.subscribe.unacknowledged_updates
                                                            if call.subscribe is not None else [])]
        self.agent.run(self.agent.machine.handle_executor_subscribed, run.key, resent)
        return StreamingResponse(stream.body(), media_type="application/json")
