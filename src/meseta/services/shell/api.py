"""The Marathon v2 REST API of ``meseta services`` (what marathon-python 0.13.0 calls).

    GET  /ping  /metrics  /v2/info  /v2/leader
    GET|POST|PUT  /v2/apps                    list (cmd, id, label, embed), create (201), update many
    GET|PUT|DELETE /v2/apps/<id>              one app (embeds tasks, counts, deployments), update
                                              (partialUpdate, {"version": v} rolls back), delete
    POST /v2/apps/<id>/restart   GET /v2/apps/<id>/versions[/<v>]
    GET|DELETE /v2/apps/<id>/tasks[/<task>]  (scale, wipe, host)
    GET  /v2/tasks   POST /v2/tasks/delete    (scale)
    GET  /v2/deployments   DELETE /v2/deployments/<id> (force: stop; else roll back)
    GET  /v2/queue   DELETE /v2/queue/<id>/delay
    GET  /v2/events                           Server-Sent Events (services.events)
    GET|POST|PUT|DELETE /v2/groups[/<id>]     tree; create, update ({"scaleBy"}, {"version": v} rolls back;
                                              ?dryRun=true: the plan's steps, nothing deployed)
    GET  /v2/groups/<id>/versions[/<v>]   PUT /v2/groups/<id>/versions/<v> (roll back)
    GET  /v2/loadbalancers   PUT|DELETE /v2/loadbalancers/<lbId>   POST /v2/loadbalancers/<lbId>/drained
                                              (Meseta's: registrations and drains, services.deploy.drain)

Repeated slashes collapse (the client sends ``/v2/apps//web``); query booleans are read
case-insensitively; an ``embed``, ``status`` or ``event_type`` value the endpoint does not know
is 400 (rest_edge.choices). Deployable calls answer DeploymentResult with ``Marathon-Deployment-Id``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from meseta.protocol.task_states import ALL_STATES
from meseta.runtime.http import FastJSONResponse as JSONResponse
from meseta.runtime.http import RecordStream
from meseta.services import wire
from meseta.services.deploy import deployments, groups
from meseta.services.deploy.groups import RootGroup
from meseta.services.effects import Emit, Kill
from meseta.services.machine import ApiError, ServicesMachine
from meseta.services.model import App
from meseta.services.shell.actor import ServicesActor
from meseta.services.shell.event_bus import EVENT_TYPES, sse_frame
from meseta.services.shell.rest_edge import check_query, choices, flag, read_json
from meseta.services.spec import app_definition, app_ids, group_definitions
from meseta.services.spec.app_fields import INT_MAX

MARATHON_VERSION = "1.10.19"
FLAGS = ("force", "partialUpdate", "scale", "wipe", "dryRun")  # the boolean query parameters
TASK_STATUSES = frozenset(state.removeprefix("TASK_").lower() for state in ALL_STATES)  # GET /v2/tasks?status=
_SLASHES = re.compile(r"/{2,}")


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"message": message, **extra}, status_code=status)


class ServicesApi:
    def __init__(self, actor: ServicesActor, info: Callable[[], dict[str, Any]]) -> None:
        self.actor = actor
        self.machine: ServicesMachine = actor.machine
        self.describe = info

    # ------------------------------------------------------------ rendering
    def app_info(self, app: App, embed: set[str]) -> dict[str, Any]:
        """AppInfo; ``embed=app.queue`` (Meseta's, opt-in: marathon 0.13.0 refuses unknown keys)
        adds ``queue``: the app's /v2/queue entry without its definition, or null."""
        m = self.machine
        info = wire.app_json(app, instances=m.instances_of(app["id"]),
                             deployments=[r.plan.id for r in m.plans_of(app["id"])],
                             last_failure=m.last_failure.get(app["id"]), embed=embed, now=self.actor.clock(),
                             readiness=m.readiness_of(app["id"]) if "readiness" in embed else ())
        if "queue" in embed:
            item = self.queue_item(app)
            info["queue"] = {k: v for k, v in item.items() if k != "app"} if item else None
        return info

    def _app(self, app_id: str) -> App:
        app = self.machine.root.apps.get(app_id)
        if app is None:
            raise ApiError(404, {"message": f"App '{app_id}' does not exist"})
        return app

    def _deployed(self, plan_id: str, version: str, status: int = 200) -> JSONResponse:
        return JSONResponse(wire.deployment_result(plan_id, version), status_code=status,
                            headers={"Marathon-Deployment-Id": plan_id})

    # ------------------------------------------------------------ /v2/apps
    async def apps(self, request: Request) -> Response:
        if request.method == "POST":
            return await self.create_app(request)
        if request.method == "PUT":
            return await self.update_apps(request)
        embed = wire.embed_names(choices(request, "embed", wire.APP_EMBED_VALUES)) | {"counts", "deployments"}
        cmd, wanted_id = request.query_params.get("cmd"), request.query_params.get("id")
        label = request.query_params.get("label")
        found = []
        for app in sorted(self.machine.root.apps.values(), key=lambda a: a["id"]):
            if cmd and cmd.lower() not in str(app.get("cmd") or "").lower():
                continue
            if wanted_id and wanted_id.lower() not in app["id"].lower():
                continue
            if label and not _labels_match(app, label):
                continue
            found.append(self.app_info(app, embed))
        return JSONResponse({"apps": found})

    async def create_app(self, request: Request) -> Response:
        raw = await read_json(request)

        def create(now: float) -> Any:
            app = self.machine.new_app(raw, now)
            if app["id"] in self.machine.root.apps:
                raise ApiError(409, {"message": f"An app with id [{app['id']}] already exists."})
            plan, effects = self.machine.deploy(self.machine.with_app(app, app["version"]), now,
                                                force=flag(request, "force"), touched=[app["id"]])
            effects.append(_api_event(request, app, now))
            return (app, plan), effects

        app, plan = await self.actor.run(create)
        body = self.app_info(self.machine.root.apps[app["id"]], set())
        body["deployments"] = [{"id": plan.id}]
        return JSONResponse(body, status_code=201, headers={"Location": app["id"], "Marathon-Deployment-Id": plan.id})

    async def update_apps(self, request: Request) -> Response:
        raws = await read_json(request)
        if not isinstance(raws, list):
            raise ApiError(422, wire.invalid_body([("/", "expected a JSON array of apps")]))
        partial = flag(request, "partialUpdate", True)

        def update(now: float) -> Any:
            version = self.machine.version(now)
            target = self.machine.root
            for raw in raws:
                given = raw.get("id") if isinstance(raw, dict) else None
                app = self._merged(raw, partial, now, given if isinstance(given, str) else None, version=version)
                target = groups.put_app(target, app, version=version)
            return self.machine.deploy(self.machine.with_service_ports(target), now, force=flag(request, "force"))

        plan = await self.actor.run(update)
        return self._deployed(plan.id, plan.version)

    def _merged(self, raw: Any, partial: bool, now: float, app_id: str | None, *, version: str | None = None) -> App:
        """The app a PUT makes; with ``version`` (a multi-app PUT) its ports are assigned later,
        together with the others'."""
        old = self.machine.root.apps.get(app_ids.canonical(app_id)) if app_id else None
        if partial and old is not None and isinstance(raw, dict):
            raw = app_definition.apply_partial_update(old, raw)
        app = self.machine.new_app(raw, now, version=version, assign_ports=version is None)
        return app_definition.carry_version_info(old, app)

    async def app(self, request: Request) -> Response:
        path = "/" + request.path_params["rest"].strip("/")
        for suffix, handler in (("/restart", self.restart), ("/versions", self.versions), ("/tasks", self.app_tasks)):
            head, sep, tail = path.partition(suffix)
            if sep and (not tail or tail.startswith("/")):
                return await handler(request, head or "/", tail.strip("/"))
        if request.method == "PUT":
            return await self.put_app(request, path)
        if request.method == "DELETE":
            return await self.delete_app(request, path)
        embed = wire.embed_names(choices(request, "embed", wire.APP_EMBED_VALUES)) | {"tasks", "lastTaskFailure"}
        if path.endswith("/*"):
            group = path[:-2] or "/"
            apps = [a for a in self.machine.root.apps.values() if app_ids.is_child_of(a["id"], group)]
            return JSONResponse({"*": [self.app_info(a, embed) for a in apps]})
        return JSONResponse({"app": self.app_info(self._app(path), embed)})

    async def put_app(self, request: Request, app_id: str) -> Response:
        raw = await read_json(request)
        force, partial = flag(request, "force"), flag(request, "partialUpdate", True)
        rollback_to, problems = app_definition.rollback_target(raw)
        if problems:
            raise ApiError(422, wire.invalid_body(problems))

        def update(now: float) -> Any:
            m = self.machine
            created = app_id not in m.root.apps
            version = m.version(now)
            if rollback_to is not None:
                stored = self.machine.versions.get(app_id, {}).get(rollback_to)
                if stored is None:
                    raise ApiError(404, {"message": f"App '{app_id}' does not exist in version {rollback_to}"})
                app = {**stored, "version": version}
            else:
                body = {**raw, "id": app_id} if isinstance(raw, dict) else raw
                app = self._merged(body, partial, now, app_id)
            plan, effects = m.deploy(groups.put_app(m.root, app, version=version), now, force=force,
                                     touched=[app["id"]])
            return (plan, created), effects

        plan, created = await self.actor.run(update)
        return self._deployed(plan.id, plan.version, 201 if created else 200)

    async def delete_app(self, request: Request, app_id: str) -> Response:
        self._app(app_id)

        def delete(now: float) -> Any:
            m = self.machine
            version = m.version(now)
            plan, effects = m.deploy(groups.remove_app(m.root, app_id, version=version), now,
                                     force=flag(request, "force", True), touched=[app_id])
            effects.append(Emit(wire.event("app_terminated_event", wire.timestamp(now), appId=app_id)))
            return plan, effects

        plan = await self.actor.run(delete)
        return self._deployed(plan.id, plan.version)

    async def restart(self, request: Request, app_id: str, rest: str) -> Response:
        if request.method != "POST" or rest:
            return _error(405, "Method not allowed")
        self._app(app_id)
        plan = await self.actor.run(lambda now: self.machine.restart(app_id, now, force=flag(request, "force")))
        return self._deployed(plan.id, plan.version)

    async def versions(self, request: Request, app_id: str, rest: str) -> Response:
        self._app(app_id)
        stored = self.machine.versions.get(app_id, {})
        if not rest:
            return JSONResponse({"versions": sorted(stored, reverse=True)})
        if rest not in stored:
            raise ApiError(404, {"message": f"App '{app_id}' does not exist in version {rest}"})
        return JSONResponse(wire.app_definition_json(stored[rest]))

    # ------------------------------------------------------------ tasks
    async def app_tasks(self, request: Request, app_id: str, rest: str) -> Response:
        app = self._app(app_id)
        if request.method == "GET":
            live = [i for i in self.machine.instances_of(app_id) if i.active]
            return JSONResponse({"tasks": [wire.task_json(i, app) for i in live]})
        if request.method != "DELETE":
            return _error(405, "Method not allowed")
        scale, wipe = flag(request, "scale"), flag(request, "wipe")
        if scale and wipe:
            raise ApiError(400, {"message": "You cannot use scale and wipe at the same time."})
        host = request.query_params.get("host")
        targets = [i for i in self.machine.instances_of(app_id) if i.active
                   and (not rest or i.task_id == rest) and host in (None, "*", i.host)]
        if rest and not targets:
            raise ApiError(404, {"message": f"Task '{rest}' does not exist"})
        if scale:
            plan = await self.actor.run(lambda now: self._kill_and_scale({app_id: [i.task_id for i in targets]},
                                                                         now, flag(request, "force")))
            return self._deployed(plan.id, plan.version)
        drained = not (wipe or flag(request, "force"))  # wipe and force skip the load balancers' drain
        await self.actor.run(lambda now: ((), self.machine.kill_tasks(app, [i.task_id for i in targets], now,
                                                                      drained=drained)))
        rendered = [wire.task_json(i, app) for i in targets]
        return JSONResponse({"task": rendered[0]} if rest else {"tasks": rendered})

    def _kill_and_scale(self, kills: dict[str, list[str]], now: float, force: bool) -> Any:
        m = self.machine
        version = m.version(now)
        target = m.root
        for app_id, task_ids in kills.items():
            app = m.root.apps[app_id]
            scaled = {**app, "instances": max(0, int(app["instances"]) - len(task_ids))}
            target = groups.put_app(target, scaled, version=version)
        forced = {t for ts in kills.values() for t in ts} if force else set()
        m.undrained |= forced  # force also skips the load balancers' drain of the named tasks
        try:
            return m.deploy(target, now, force=force, kill=kills)
        except ApiError:
            m.undrained -= forced
            raise

    async def tasks(self, request: Request) -> Response:
        wanted = {*choices(request, "status", TASK_STATUSES, fold_case=True),
                  *choices(request, "status[]", TASK_STATUSES, fold_case=True)}
        out = []
        for instance in self.machine.instances.values():
            app = self.machine.root.apps.get(instance.app_id)
            if app is None or not instance.active:
                continue
            if wanted and wire.task_state(instance).removeprefix("TASK_").lower() not in wanted:
                continue
            out.append(wire.task_json(instance, app))
        return JSONResponse({"tasks": out})

    async def delete_tasks(self, request: Request) -> Response:
        body = await read_json(request)
        ids = body.get("ids") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ApiError(400, {"message": "'ids' must be a list of task ids"})
        by_app: dict[str, list[str]] = {}
        for task_id in ids:
            app_id = app_ids.app_of_task(task_id)
            if app_id is None:
                raise ApiError(400, {"message": f"Invalid task id '{task_id}'"})
            if task_id in self.machine.instances and app_id in self.machine.root.apps:
                by_app.setdefault(app_id, []).append(task_id)
        if flag(request, "scale"):
            plan = await self.actor.run(lambda now: self._kill_and_scale(by_app, now, flag(request, "force")))
            return self._deployed(plan.id, plan.version)
        killed = [self.machine.instances[t] for ts in by_app.values() for t in ts]
        drained = not flag(request, "force")
        await self.actor.run(lambda now: ((), [e for a, ts in by_app.items()
                                                for e in self.machine.kill_tasks(self.machine.root.apps[a], ts, now,
                                                                                 drained=drained)]))
        return JSONResponse({"tasks": [wire.task_json(i, self.machine.root.apps[i.app_id])
                                       for i in killed]})

    # ------------------------------------------------------------ deployments, queue
    async def deployments(self, request: Request) -> Response:
        """``?embed=stall`` adds ``stallReason`` to deployments that stopped making progress
        (marathon 0.13.0 refuses unknown keys, so it is opt-in; the reason is also in the
        deployment_failed event)."""
        with_stall = "stall" in choices(request, "embed", ("stall",))
        out = []
        for running in self.machine.running.values():
            steps = [[(a.kind.value, a.app_id) for a in step] for step in running.plan.steps]
            current = running.plan.steps[running.step] if running.step < len(running.plan.steps) else ()
            item = wire.deployment_json(running.plan.id, running.plan.version, steps,
                                        current_step=min(running.step + 1, len(steps)),
                                        readiness={a.app_id: self.machine.readiness_of(a.app_id) for a in current})
            if with_stall and running.stalled:
                item["stallReason"] = running.stalled
            out.append(item)
        return JSONResponse(out)

    async def deployment(self, request: Request) -> Response:
        plan_id = request.path_params["plan_id"]
        force = flag(request, "force")
        plan = await self.actor.run(lambda now: self.machine.cancel_deployment(plan_id, now, force=force))
        if plan is None:
            return Response(status_code=202)
        return self._deployed(plan.id, plan.version)

    def queue_item(self, app: App, *, with_offers: bool = False) -> dict[str, Any] | None:
        """The app's launch queue entry (None when nothing of it waits to launch)."""
        m, now = self.machine, self.actor.clock()
        count = m.queue.get(app["id"], 0)
        if count <= 0:
            return None
        stats = m.stats.get(app["id"])
        return wire.queue_item_json(
            app, count=count, time_left_seconds=m.delays.delay_left(app["id"], now),
            overdue=m.delays.overdue(app["id"], now), since=stats.since if stats else now,
            summary=stats.summary_json() if stats else None,
            last_unused_offers=stats.last_unused_offers_json() if stats and with_offers else None)

    async def queue(self, request: Request) -> Response:
        with_offers = "lastUnusedOffers" in choices(request, "embed", ("lastUnusedOffers",))
        items = [self.queue_item(app, with_offers=with_offers)
                 for app_id in sorted(self.machine.queue) if (app := self.machine.root.apps.get(app_id))]
        return JSONResponse({"queue": [item for item in items if item is not None]})

    async def queue_delay(self, request: Request) -> Response:
        app_id = app_ids.canonical(request.path_params["rest"])
        if request.method != "DELETE" or not self.machine.queue.get(app_id):
            raise ApiError(404, {"message": f"Application {app_id} not found in tasks queue."})
        self.machine.delays.reset(app_id)
        return Response(status_code=204)

    # ------------------------------------------------------------ load balancers (Meseta's)
    async def loadbalancers(self, request: Request) -> Response:
        listed = await self.actor.run(lambda now: (self.machine.lb_list(now), []))
        return JSONResponse({"loadBalancers": listed})

    async def loadbalancer(self, request: Request) -> Response:
        """PUT registers or renews (the registration), DELETE forgets (``{"id"}``)."""
        lb_id = request.path_params["lb_id"]
        if request.method == "PUT":
            body = await read_json(request)
            registration = await self.actor.run(lambda now: (self.machine.lb_register(lb_id, body, now), []))
            return JSONResponse(registration)
        await self.actor.run(lambda now: ((), self.machine.lb_unregister(lb_id, now)))
        return JSONResponse({"id": lb_id})

    async def loadbalancer_drained(self, request: Request) -> Response:
        """``{"taskIds"}`` no longer routed to by the LB; answers ``{"killed"}``: the tasks whose
        Kill this confirmation sent."""
        lb_id = request.path_params["lb_id"]
        body = await read_json(request)

        def confirm(now: float) -> Any:
            effects = self.machine.lb_drained(lb_id, body, now)
            return [e.task_id for e in effects if isinstance(e, Kill)], effects

        return JSONResponse({"killed": await self.actor.run(confirm)})

    # ------------------------------------------------------------ groups, info, events
    async def groups(self, request: Request) -> Response:
        group_id = "/" + request.path_params.get("rest", "").strip("/")
        head, sep, version = group_id.partition("/versions")
        if sep and (not version or version.startswith("/")):
            return await self.group_versions(request, head or "/", version.strip("/"))
        if request.method in ("POST", "PUT"):
            return await self.change_group(request, group_id)
        if request.method == "DELETE":
            return await self.delete_group(request, group_id)
        wanted = choices(request, "embed", wire.GROUP_EMBED_VALUES)  # its groups, apps and (no) pods always
        embed = wire.embed_names(e for e in wanted if e.startswith("group.apps."))
        tree = wire.tree_json(self.machine.root, group_id, render_app=lambda a: self.app_info(a, embed))
        if tree is None:
            raise ApiError(404, {"message": f"Group '{group_id}' does not exist"})
        return JSONResponse(tree)

    async def change_group(self, request: Request, group_id: str) -> Response:
        """POST creates, PUT changes (a definition, ``{"version": v}`` rolls back, ``{"scaleBy":
        f}`` scales); PUT ``?dryRun=true`` answers the plan's ``{"steps"}`` and changes nothing."""
        body = await read_json(request)
        force, creating, dry_run = flag(request, "force"), request.method == "POST", flag(request, "dryRun")
        if creating and dry_run:
            raise ApiError(400, {"message": "dryRun is only for PUT /v2/groups (a POST always deploys)"})

        def change(now: float) -> Any:
            target, group_version = self._group_target(body, group_id, creating, self.machine.version(now))
            if dry_run:
                return {"steps": deployments.steps_json(self.machine.preview(target))}, []
            return self.machine.deploy(target, now, force=force, group_version=group_version)

        result = await self.actor.run(change)
        if dry_run:
            return JSONResponse(result)
        return self._deployed(result.id, result.version, 201 if creating else 200)

    def _group_target(self, body: Any, group_id: str, creating: bool, version: str) -> tuple[RootGroup, str]:
        """The root a group change makes, and the group whose version it records."""
        m = self.machine
        if not creating and isinstance(body, dict) and isinstance(body.get("version"), str):
            return m.group_at(group_id, body["version"], version), group_id  # {"version": v} rolls the group back
        if isinstance(body, dict) and "scaleBy" in body and "apps" not in body and "groups" not in body:
            factor = body["scaleBy"]
            if isinstance(factor, bool) or not isinstance(factor, int | float) or not 0 <= factor <= INT_MAX:
                raise ApiError(422, wire.invalid_body([("/scaleBy", "must be a number from 0 to 2147483647")]))
            if group_id not in m.group_ids:
                raise ApiError(404, {"message": f"Group '{group_id}' does not exist"})
            if any(a["instances"] * factor > INT_MAX for a in groups.apps_below(m.root, group_id)):
                raise ApiError(422, wire.invalid_body([("/scaleBy", f"scales an app beyond {INT_MAX} instances")]))
            return groups.scale_by(m.root, group_id, float(factor), version=version), group_id

        def normalise(raw: dict[str, Any], base: str) -> Any:
            return app_definition.normalise(raw, now_version=version, base=base)

        spec = group_definitions.parse_group(body, group_id, normalise_app=normalise)
        if isinstance(spec, groups.GroupError):
            raise ApiError(spec.status, wire.error_body(spec.message, list(spec.details)))
        change_of = groups.create_group if creating else groups.update_group
        target = change_of(m.root, spec, version=version)
        if isinstance(target, groups.GroupError):
            raise ApiError(target.status, wire.error_body(target.message, list(target.details)))
        return m.with_service_ports(target), spec.id

    async def group_versions(self, request: Request, group_id: str, version: str) -> Response:
        """GET .../versions: the recorded versions (newest first); GET .../versions/{v}: the group
        as it was; PUT .../versions/{v}: roll back to it (marathon-python's rollback_group)."""
        recorded = self.machine.group_versions.get(group_id, {})
        if request.method == "GET" and not version:
            if group_id not in self.machine.group_ids and not recorded:
                raise ApiError(404, {"message": f"Group '{group_id}' does not exist"})
            return JSONResponse(sorted(recorded, reverse=True))
        if request.method == "GET":
            then = self.machine.group_at(group_id, version, version)
            return JSONResponse(wire.tree_json(then, group_id, render_app=wire.app_definition_json))
        if request.method != "PUT" or not version:
            return _error(405, "Method not allowed")
        force = flag(request, "force")
        plan = await self.actor.run(lambda now: self.machine.deploy(
            self.machine.group_at(group_id, version, self.machine.version(now)), now, force=force,
            group_version=group_id))
        return self._deployed(plan.id, plan.version)

    async def delete_group(self, request: Request, group_id: str) -> Response:
        if group_id not in self.machine.group_ids:
            raise ApiError(404, {"message": f"Group '{group_id}' does not exist"})

        def delete(now: float) -> Any:
            m = self.machine
            return m.deploy(groups.remove_group(m.root, group_id, version=m.version(now)), now,
                            force=flag(request, "force"))

        plan = await self.actor.run(delete)
        return self._deployed(plan.id, plan.version)

    async def info(self, request: Request) -> Response:
        """``?embed=connection`` adds ``connection``: whether the framework is subscribed to the
        master, why not, and since when (opt-in: marathon 0.13.0 refuses unknown keys)."""
        body = self.describe()
        if "connection" in choices(request, "embed", ("connection",)):
            connected, reason, since = self.actor.connection()
            body["connection"] = {"connected": connected, "reason": reason,
                                  "since": wire.timestamp(since) if since is not None else None,
                                  "disconnections": self.actor.disconnections}
        return JSONResponse(body)

    async def leader(self, request: Request) -> Response:
        leader = self.describe().get("leader")
        if leader is None:
            return _error(404, "There is no leader")
        return JSONResponse({"leader": leader})

    async def ping(self, request: Request) -> Response:
        """pong while the framework is subscribed; 503 and the reason while it is not (a
        scheduler that cannot launch anything is not healthy, even if its API answers)."""
        connected, reason, _ = self.actor.connection()
        accept = request.headers.get("accept", "*/*")
        as_json = "application/json" in accept and "text" not in accept and "*/*" not in accept
        if not connected:
            text = f"not connected to Mesos: {reason}"
            return JSONResponse(text, status_code=503) if as_json else Response(text, 503, media_type="text/plain")
        return JSONResponse("pong") if as_json else Response("pong", media_type="text/plain")

    async def metrics(self, request: Request) -> Response:
        m = self.machine
        connected, _, _ = self.actor.connection()
        gauges = {"marathon.apps.active.gauge": {"value": len(m.root.apps)},
                  "marathon.deployments.active.gauge": {"value": len(m.running)},
                  "marathon.instances.running.gauge": {"value": sum(i.running for i in m.instances.values())},
                  "marathon.instances.launch-queue.gauge": {"value": sum(m.queue.values())},
                  "marathon.mesos.connected.gauge": {"value": int(connected)}}
        counters = {"marathon.mesos.disconnections.counter": {"count": self.actor.disconnections}}
        return JSONResponse({"version": "4.0.0", "counters": counters, "gauges": gauges, "histograms": {},
                             "meters": {}, "timers": {}})

    async def events(self, request: Request) -> Response | RecordStream:
        subscriber = self.actor.bus.subscribe(choices(request, "event_type", EVENT_TYPES))
        client = request.client.host if request.client else ""
        attached = wire.event("event_stream_attached", wire.timestamp(self.actor.clock()), remoteAddress=client)
        subscriber.queue.put_nowait(sse_frame(attached))

        async def frames() -> Any:
            try:
                async for frame in subscriber.frames():
                    yield frame
            finally:
                self.actor.bus.unsubscribe(subscriber)

        return RecordStream(frames(), {"Cache-Control": "no-cache"}, media_type="text/event-stream")


def _labels_match(app: App, selector: str) -> bool:
    labels = app.get("labels") or {}
    for term in (t.strip() for t in selector.split(",") if t.strip()):
        if "!=" in term:
            key, value = (s.strip() for s in term.split("!=", 1))
            if labels.get(key) == value:
                return False
        elif "==" in term:
            key, value = (s.strip() for s in term.split("==", 1))
            if labels.get(key) != value:
                return False
        elif " notin " in term or " in " in term:
            negate = " notin " in term
            key, values = term.split(" notin " if negate else " in ", 1)
            choices = {v.strip() for v in values.strip().strip("()").split(",")}
            if (labels.get(key.strip()) in choices) == negate:
                return False
        elif term not in labels:
            return False
    return True


def _api_event(request: Request, app: App, now: float) -> Emit:
    client = request.client.host if request.client else ""
    return Emit(wire.event("api_post_event", wire.timestamp(now), clientIp=client, uri=str(request.url.path),
                       appDefinition=wire.app_definition_json(app)))


def build_services_app(actor: ServicesActor, info: Callable[[], dict[str, Any]]) -> Any:
    api = ServicesApi(actor, info)

    def guarded(handler: Callable[[Request], Awaitable[Any]]) -> Callable[[Request], Awaitable[Any]]:
        async def endpoint(request: Request) -> Any:
            try:
                check_query(request)
                for name in FLAGS:  # every flag refused before a handler starts changing anything
                    flag(request, name)
                return await handler(request)
            except ApiError as exc:
                return JSONResponse(exc.body, status_code=exc.status)
        return endpoint

    routes = [
        Route("/ping", guarded(api.ping), methods=["GET"]),
        Route("/metrics", guarded(api.metrics), methods=["GET"]),
        Route("/v2/info", guarded(api.info), methods=["GET"]),
        Route("/v2/leader", guarded(api.leader), methods=["GET"]),
        Route("/v2/apps", guarded(api.apps), methods=["GET", "POST", "PUT"]),
        Route("/v2/apps/{rest:path}", guarded(api.app), methods=["GET", "PUT", "DELETE", "POST"]),
        Route("/v2/tasks", guarded(api.tasks), methods=["GET"]),
        Route("/v2/tasks/delete", guarded(api.delete_tasks), methods=["POST"]),
        Route("/v2/deployments", guarded(api.deployments), methods=["GET"]),
        Route("/v2/deployments/{plan_id}", guarded(api.deployment), methods=["DELETE"]),
        Route("/v2/queue", guarded(api.queue), methods=["GET"]),
        Route("/v2/queue/{rest:path}/delay", guarded(api.queue_delay), methods=["DELETE"]),
        Route("/v2/groups", guarded(api.groups), methods=["GET", "POST", "PUT", "DELETE"]),
        Route("/v2/groups/{rest:path}", guarded(api.groups), methods=["GET", "POST", "PUT", "DELETE"]),
        Route("/v2/events", guarded(api.events), methods=["GET"]),
        Route("/v2/loadbalancers", guarded(api.loadbalancers), methods=["GET"]),
        Route("/v2/loadbalancers/{lb_id}", guarded(api.loadbalancer), methods=["PUT", "DELETE"]),
        Route("/v2/loadbalancers/{lb_id}/drained", guarded(api.loadbalancer_drained), methods=["POST"]),
    ]
    app = Starlette(routes=routes)

    async def collapse_slashes(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and "//" in scope.get("path", ""):
            scope = {**scope, "path": _SLASHES.sub("/", scope["path"]), "raw_path": None}
        await app(scope, receive, send)

    return collapse_slashes

