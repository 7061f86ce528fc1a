"""Random event sequences through the master (a World checks its invariants after each event).

Agents register and vanish, frameworks (partition-aware or not) subscribe, accept, decline, kill,
disconnect and tear down, agents report updates, miss pings, are marked gone and re-register, and
registry writes complete late and in any order, as hypothesis finds.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from meseta.core.resources import Resources
from meseta.master.effects import Persist, RegistryOperation, StartTimer, ToAgent, ToFramework
from meseta.protocol.task_states import TERMINAL
from meseta.testing.master_world import World

# Weighted: launches, updates and timers (pings, failovers, batches) matter most.
ACTIONS = ["agent", "framework", "allocate", "allocate", "accept", "accept", "accept", "decline", "update",
           "update", "update", "ack", "ack", "kill", "disconnect", "teardown", "timer", "timer", "timer",
           "timer", "reconcile", "agent_gone", "persist", "persist", "persist", "reregister", "mark_gone"]


class Driver:
    def __init__(self) -> None:
        self.world = World(agent_ping_timeout=1.0, max_agent_ping_timeouts=2)
        self.now = 0.0
        self.offers: dict[str, list[dict[str, Any]]] = {}
        self.running: list[tuple[str, str, str]] = []  # (framework, agent, task) launched
        self.unacked: list[tuple[str, str, str, str]] = []
        self.timers: dict[tuple[str, ...], float] = {}
        self.streams: dict[str, str] = {}
        self.task_counter = 0
        self.writes: list[RegistryOperation] = []  # registry writes under way, completed in any order
        self.infos: dict[str, dict[str, Any]] = {}  # agent id -> AgentInfo
        self.tasks: dict[tuple[str, str], dict[str, Any]] = {}  # (framework, task) -> TaskInfo
        self.last_state: dict[tuple[str, str], str] = {}

    def effects(self, effects: list[Any]) -> list[Any]:
        for effect in effects:
            if isinstance(effect, StartTimer):
                self.timers[effect.key] = effect.at
            elif isinstance(effect, ToFramework) and effect.event["type"] == "OFFERS":
                self.offers.setdefault(effect.framework_id, []).extend(effect.event["offers"]["offers"])
            elif isinstance(effect, Persist):
                self.writes.append(effect.operation)
                if hasattr(effect.operation, "info"):
                    self.infos[effect.operation.agent_id] = effect.operation.info  # type: ignore[union-attr]
            elif isinstance(effect, ToAgent) and effect.message["type"] == "RUN_TASK":
                task = effect.message["task"]
                fid = effect.message["framework_info"]["id"]["value"]
                self.running.append((fid, task["agent_id"]["value"], task["task_id"]["value"]))
                self.tasks[(fid, task["task_id"]["value"])] = task
        return effects

    def reregister(self, agent_id: str, pick: int) -> None:
        """The agent comes back reporting the tasks it still runs (as far as the world knows)."""
        m = self.world
        reported = [{"framework_id": {"value": fid}, "info": self.tasks[(fid, tid)], "state": "TASK_RUNNING",
                     "executor_id": "", "resources": self.tasks[(fid, tid)]["resources"]}
                    for fid, aid, tid in self.running if aid == agent_id
                    and self.last_state.get((fid, tid), "TASK_STAGING") not in TERMINAL]
        frameworks = [f.info for f in m.frameworks.values()]
        self.effects(m.reregister_agent(self.infos[agent_id], reported, [], frameworks, f"rs-{pick}", self.now))

    def step(self, action: str, pick: int) -> None:
        m, now = self.world, self.now
        frameworks = sorted(f for f in m.frameworks if m.frameworks[f].connected)
        agents = sorted(m.agents)
        if action == "agent":
            info = {"hostname": f"h{pick}", "resources": Resources.parse("cpus:4;mem:2048").to_json()}
            self.effects(m.register_agent(info, f"as-{pick}", now))
        elif action == "framework":
            stream = f"fs-{len(self.streams)}"
            info: dict[str, Any] = {"user": "u", "name": f"f{pick}", "checkpoint": pick % 3 > 0}
            if pick % 2:
                info["capabilities"] = [{"type": "PARTITION_AWARE"}]
            effects = self.effects(m.subscribe(info, None, stream, [], now))
            self.streams[effects[0].framework_id] = stream
        elif action == "allocate":
            self.effects(m.allocate(now))
        elif action in ("accept", "decline") and frameworks:
            fid = frameworks[pick % len(frameworks)]
            offers = [o for o in self.offers.pop(fid, []) if o["id"]["value"] in m.offers]
            if not offers:
                return
            offer = offers[pick % len(offers)]
            if action == "decline":
                self.effects(m.decline(fid, [offer["id"]["value"]], float(pick % 3), now))
                return
            self.task_counter += 1
            cpus = [0.5, 1, 3, 9][pick % 4]  # sometimes more than the offer holds: TASK_ERROR
            task = {"name": "t", "task_id": {"value": f"t{self.task_counter}"}, "agent_id": offer["agent_id"],
                    "command": {"value": "true"}, "resources": Resources.parse(f"cpus:{cpus};mem:64").to_json()}
            ops = [{"type": "LAUNCH", "launch": {"task_infos": [task]}}]
            self.effects(m.accept(fid, [offer["id"]["value"]], ops, 0.0, now))
        elif action == "update" and self.running:
            fid, aid, tid = self.running[pick % len(self.running)]
            state = ["TASK_RUNNING", "TASK_FINISHED", "TASK_FAILED"][pick % 3]
            uid = base64.b64encode(uuid.uuid4().bytes).decode()
            status = {"task_id": {"value": tid}, "state": state, "uuid": uid, "source": "SOURCE_EXECUTOR"}
            self.effects(m.status_update(aid, {"framework_id": {"value": fid}, "status": status}, now))
            self.unacked.append((fid, aid, tid, uid))
            if aid in m.agents:
                self.last_state[(fid, tid)] = state
        elif action == "ack" and self.unacked:
            fid, aid, tid, uid = self.unacked.pop(pick % len(self.unacked))
            if fid in m.frameworks and m.frameworks[fid].connected:
                self.effects(m.acknowledge(fid, aid, tid, uid, now))
        elif action == "kill" and self.running:
            fid, _, tid = self.running[pick % len(self.running)]
            if fid in m.frameworks and m.frameworks[fid].connected:
                self.effects(m.kill(fid, tid, None, now))
        elif action == "disconnect" and frameworks:
            fid = frameworks[pick % len(frameworks)]
            self.effects(m.framework_disconnected(fid, self.streams[fid], now))
        elif action == "teardown" and frameworks:
            self.effects(m.teardown(frameworks[pick % len(frameworks)], now))
        elif action == "reconcile" and frameworks:
            self.effects(m.reconcile(frameworks[pick % len(frameworks)], [], now))
        elif action == "agent_gone" and agents:
            self.effects(m.agent_disconnected(agents[pick % len(agents)], f"as-{pick}", now))
        elif action == "persist" and self.writes:
            self.effects(m.persisted(self.writes.pop(pick % len(self.writes)), now))
        elif action == "reregister" and self.infos:
            known = sorted(self.infos)
            self.reregister(known[pick % len(known)], pick)
        elif action == "mark_gone" and (agents or m.unreachable_agents):
            candidates = sorted([*agents, *m.unreachable_agents])
            payload = {"agent_id": {"value": candidates[pick % len(candidates)]}}
            self.effects(m.operator("MARK_AGENT_GONE", payload, now))
        elif action == "timer" and self.timers:
            key = min(self.timers, key=lambda k: self.timers[k])
            self.now = max(self.now, self.timers.pop(key))
            self.effects(m.timer(key, self.now))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(ACTIONS), st.integers(0, 50)), min_size=5, max_size=120))
def test_any_event_sequence_keeps_the_master_consistent(steps: list[tuple[str, int]]) -> None:
    driver = Driver()
    driver.step("agent", 1)
    driver.step("framework", 1)
    driver.step("persist", 0)
    for action, pick in steps:
        driver.step(action, pick)
    while driver.writes:
        driver.step("persist", 0)
    driver.step("allocate", 0)  # (the World checked the invariants after every one of these)
