"""The root group: paths, group definitions, scaleBy, dependencies and cycles."""

from __future__ import annotations

from typing import Any

import pytest

from meseta.services.deploy.groups import (
    CLASH_MESSAGE,
    CYCLE_MESSAGE,
    Group,
    GroupError,
    GroupSpec,
    RootGroup,
    ancestors,
    apps_below,
    canonical,
    create_group,
    dependency_graph,
    find_cycle,
    group_ids,
    put_app,
    remove_group,
    restore_group,
    scale_by,
    snapshot,
    stamp,
    transitive_dependencies,
    update_group,
    validate_root,
)
from meseta.services.model import App
from meseta.services.spec.app_fields import UNSUPPORTED
from meseta.services.spec.group_definitions import parse_group

V0, V1 = "2026-01-01T00:00:00.000Z", "2026-01-02T00:00:00.000Z"


def app(app_id: str, **fields: Any) -> App:
    """A normalised app as services.app_definition would produce it (the fields used here)."""
    return {"id": app_id, "cmd": "sleep 1", "instances": 1, "version": V0, "dependencies": [],
            "labels": {}, "healthChecks": [], "readinessChecks": [], "killSelection": "YOUNGEST_FIRST",
            "upgradeStrategy": {"minimumHealthCapacity": 1.0, "maximumOverCapacity": 1.0}, **fields}


def normalise(raw: dict[str, Any], group_id: str) -> tuple[App | None, list[tuple[str, str]]]:
    """A stand-in for app_definition.normalise: ids resolved against the group."""
    if "id" not in raw:
        return None, [("/id", "is required")]
    if "cmd" not in raw:
        return None, [("/cmd", "is required")]
    deps = [canonical(d, group_id) for d in raw.get("dependencies", [])]
    fields = {k: v for k, v in raw.items() if k not in ("id", "dependencies")}
    return app(canonical(raw["id"], group_id), dependencies=deps, **fields), []


def root_of(*apps: App, groups: tuple[Group, ...] = ()) -> RootGroup:
    return RootGroup({a["id"]: a for a in apps}, {g.id: g for g in groups}, V0)


def parsed(body: Any, base: str = "/") -> GroupSpec:
    spec = parse_group(body, base, normalise_app=normalise)
    assert isinstance(spec, GroupSpec), spec
    return spec


def applied(result: RootGroup | GroupError) -> RootGroup:
    assert isinstance(result, RootGroup), result
    return result


@pytest.mark.parametrize(("path", "base", "expected"), [
    ("foo", "/", "/foo"), ("/a/b", "/x", "/a/b"), ("b", "/a", "/a/b"), ("../db", "/prod/web", "/prod/db"),
    ("./x/../y", "/g", "/g/y"), ("../../..", "/a", "/"), ("", "/g", "/g"),
])
def test_canonical_paths(path: str, base: str, expected: str) -> None:
    assert canonical(path, base) == expected


def test_implicit_groups_and_apps_below() -> None:
    root = root_of(app("/dev/api/x"), app("/prod/web"), groups=(Group("/empty"),))
    assert group_ids(root) == {"/", "/dev", "/dev/api", "/prod", "/empty"}
    assert [a["id"] for a in apps_below(root, "/dev")] == ["/dev/api/x"]
    assert [a["id"] for a in apps_below(root, "/")] == ["/dev/api/x", "/prod/web"]
    assert apps_below(root, "/de") == []  # a prefix is not a parent
    assert ancestors("/a/b/c") == ["/a/b", "/a", "/"]


def test_an_app_and_a_group_cannot_share_a_path() -> None:
    error = validate_root(root_of(app("/a"), app("/a/b")))
    assert error is not None and error.status == 422 and error.message == CLASH_MESSAGE
    error = validate_root(root_of(app("/g"), groups=(Group("/g"),)))
    assert error is not None and error.details[0][0] == "/g"


def test_post_group_with_nested_apps_and_groups() -> None:
    spec = parsed({"id": "/prod", "apps": [{"id": "db", "cmd": "db"}],
                   "groups": [{"id": "front", "dependencies": ["../db"],
                               "apps": [{"id": "web", "cmd": "w", "dependencies": ["api"]}]}]})
    root = applied(create_group(RootGroup(), spec, version=V1))
    assert sorted(root.apps) == ["/prod/db", "/prod/front/web"]
    assert root.apps["/prod/front/web"]["dependencies"] == ["/prod/front/api"]
    assert root.groups["/prod/front"].dependencies == ("/prod/db",)
    assert root.apps["/prod/db"]["version"] == V1 and root.version == V1


def test_a_nested_absolute_id_outside_the_group_is_422() -> None:
    error = parse_group({"id": "/group", "apps": [{"id": "/app", "cmd": "x"}]}, normalise_app=normalise)
    assert isinstance(error, GroupError) and error.status == 422
    assert error.details == (("/apps(0)/id", "identifier /app is not child of /group. Hint: use relative paths."),)
    error = parse_group({"id": "/g", "groups": [{"id": "a/b"}]}, normalise_app=normalise)
    assert isinstance(error, GroupError)
    assert error.details[0] == ("/groups(0)/id", "identifier /g/a/b is not child of /g. Hint: use relative paths.")


def test_parse_errors_carry_json_paths() -> None:
    error = parse_group({"id": "/g", "apps": [{"id": "x"}, {"id": "x", "cmd": "a"}, {"id": "x", "cmd": "b"}],
                         "groups": [{"id": "Bad"}]}, normalise_app=normalise)
    assert isinstance(error, GroupError)
    paths = [p for p, _ in error.details]
    assert paths == ["/apps(0)/cmd", "/apps(2)/id", "/groups(0)/id"]
    assert isinstance(parse_group({"apps": {}}, "/g", normalise_app=normalise), GroupError)


def test_keys_meseta_does_not_read_are_refused_naming_them() -> None:
    """As in app definitions: pods, a typo (``app``) or a scaleBy beside apps were dropped silently."""
    error = parse_group({"id": "/g", "app": [], "pods": [{"id": "p"}], "enforceRole": True, "scaleBy": 2, "apps": [],
                         "groups": [{"id": "inner", "labels": {}}]}, normalise_app=normalise)
    assert isinstance(error, GroupError) and error.status == 422
    assert dict(error.details) == {"/app": UNSUPPORTED, "/pods": UNSUPPORTED, "/enforceRole": UNSUPPORTED,
                                   "/scaleBy": "cannot be combined with apps or groups, nor nested",
                                   "/groups(0)/labels": UNSUPPORTED}
    what_get_shows = {"id": "/g", "apps": [], "groups": [], "dependencies": [], "version": V0, "pods": []}
    assert parsed(what_get_shows).id == "/g"


def test_body_id_is_relative_to_the_url_group() -> None:
    assert parsed({"id": "sub"}, "/g").id == "/g/sub"
    assert parsed({}, "/g").id == "/g"


def test_post_conflicts_are_409() -> None:
    root = root_of(app("/g/a"), app("/solo"))
    exists = create_group(root, parsed({"id": "/g"}), version=V1)
    assert isinstance(exists, GroupError) and exists.status == 409
    assert exists.message == "Group /g is already created. Use PUT to change this group."
    clash = create_group(root, parsed({"id": "/solo"}), version=V1)
    assert isinstance(clash, GroupError) and clash.message == "An app with id [/solo] already exists."


def test_put_replaces_given_keys_and_keeps_absent_ones() -> None:
    root = root_of(app("/g/a"), app("/g/b"), app("/g/sub/c"), groups=(Group("/g", ("/x",)),))
    only_deps = applied(update_group(root, parsed({"id": "/g", "dependencies": ["/y"]}), version=V1))
    assert sorted(only_deps.apps) == sorted(root.apps)
    assert only_deps.groups["/g"].dependencies == ("/y",)
    new_apps = applied(update_group(root, parsed({"id": "/g", "apps": [{"id": "a", "cmd": "sleep 1"},
                                                                        {"id": "d", "cmd": "new"}]}), version=V1))
    assert sorted(new_apps.apps) == ["/g/a", "/g/d", "/g/sub/c"]
    assert new_apps.apps["/g/a"]["version"] == V0  # unchanged apps keep their version
    assert new_apps.apps["/g/d"]["version"] == V1
    assert new_apps.groups["/g"].dependencies == ("/x",)
    no_groups = applied(update_group(root, parsed({"id": "/g", "groups": []}), version=V1))
    assert sorted(no_groups.apps) == ["/g/a", "/g/b"]


def test_put_creating_a_cycle_is_422() -> None:
    root = root_of(app("/a", dependencies=["/b"]), app("/b"))
    error = update_group(root, parsed({"id": "/", "apps": [{"id": "a", "cmd": "sleep 1", "dependencies": ["/b"]},
                                                           {"id": "b", "cmd": "sleep 1", "dependencies": ["/a"]}]}),
                         version=V1)
    assert isinstance(error, GroupError) and error.message == CYCLE_MESSAGE


def test_remove_group_removes_everything_below() -> None:
    root = root_of(app("/g/a"), app("/g/s/b"), app("/h"), groups=(Group("/g/s"),))
    after = remove_group(root, "/g", version=V1)
    assert list(after.apps) == ["/h"] and "/g/s" not in after.groups
    assert remove_group(root, "/", version=V1).apps == {}


def test_scale_by_multiplies_every_transitive_app_rounding_up() -> None:
    root = root_of(app("/g/a", instances=3), app("/g/s/b", instances=25), app("/h", instances=2))
    scaled = scale_by(root, "/g", 1.1, version=V1)
    assert scaled.apps["/g/a"]["instances"] == 4  # ceil(3.3)
    assert scaled.apps["/g/a"]["version"] == V1 and scaled.apps["/h"] == root.apps["/h"]
    assert scale_by(root, "/g", 0.28, version=V1).apps["/g/s/b"]["instances"] == 7  # 7.000000000000001 in floats
    assert scale_by(root, "/g", 0.5, version=V1).apps["/g/a"]["instances"] == 2


def test_stamp_records_scale_and_config_changes() -> None:
    old = app("/a", versionInfo={"lastScalingAt": V0, "lastConfigChangeAt": V0})
    scaled = stamp({**old, "instances": 5}, V1, old)
    assert scaled["versionInfo"] == {"lastScalingAt": V1, "lastConfigChangeAt": V0}
    changed = stamp({**old, "cmd": "other"}, V1, old)
    assert changed["versionInfo"] == {"lastScalingAt": V1, "lastConfigChangeAt": V1}
    assert stamp(dict(old), V1, old) is old


def test_group_dependencies_apply_to_every_app_below() -> None:
    root = root_of(app("/db/pg"), app("/db/redis"), app("/web/a"), app("/web/sub/b", dependencies=["/cache"]),
                   app("/cache"), groups=(Group("/web", ("/db",)),))
    graph = dependency_graph(root)
    assert graph["/web/a"] == {"/db/pg", "/db/redis"}
    assert graph["/web/sub/b"] == {"/db/pg", "/db/redis", "/cache"}
    assert "/db/pg" not in graph  # depends on nothing


def test_transitive_dependencies_and_unknown_ids() -> None:
    root = root_of(app("/a", dependencies=["/b", "/nowhere"]), app("/b", dependencies=["/c"]), app("/c"))
    assert transitive_dependencies(root, "/a") == {"/b", "/c"}
    assert transitive_dependencies(root, "/c") == set()


def test_cycles_are_found_through_groups() -> None:
    root = root_of(app("/g/a", dependencies=["/h"]), app("/h/b"), groups=(Group("/h", ("/g",)),))
    cycle = find_cycle(dependency_graph(root))
    assert cycle is not None and cycle[0] == cycle[-1] and set(cycle) == {"/g/a", "/h/b"}
    assert find_cycle({"/a": {"/a"}}) == ["/a", "/a"]
    assert find_cycle({"/a": {"/b"}, "/b": set()}) is None


def test_long_chains_need_no_recursion() -> None:
    apps = [app(f"/a{i}", dependencies=[f"/a{i + 1}"] if i < 2999 else []) for i in range(3000)]
    root = root_of(*apps)
    assert validate_root(root) is None
    assert len(transitive_dependencies(root, "/a0")) == 2999


def test_put_app_keeps_an_unchanged_app_as_stored() -> None:
    root = root_of(app("/a"))
    same = put_app(root, app("/a", version="ignored"), version=V1)
    assert same.apps["/a"]["version"] == V0
    assert put_app(root, app("/a", cmd="new"), version=V1).apps["/a"]["version"] == V1


def test_a_group_version_restores_its_apps_and_groups_and_leaves_the_rest() -> None:
    root = root_of(app("/shop/db"), app("/shop/web", instances=2), app("/other"),
                   groups=(Group("/shop", ("/other",), V0),))
    snap = snapshot(root, "/shop")
    assert snap == {"apps": {"/shop/db": V0, "/shop/web": V0}, "groups": {"/shop": ["/other"]}}
    later = root_of(app("/shop/db", cmd="new", version=V1), app("/shop/cache", version=V1), app("/other", version=V1))
    restored = restore_group(later, "/shop", {"/shop/db": root.apps["/shop/db"], "/shop/web": root.apps["/shop/web"]},
                             snap["groups"], version="2026-01-01T00:00:09.000Z")
    assert isinstance(restored, RootGroup)
    assert set(restored.apps) == {"/shop/db", "/shop/web", "/other"}, "the cache added since is gone"
    assert restored.apps["/shop/db"]["cmd"] == "sleep 1" and restored.apps["/other"] is later.apps["/other"]
    assert restored.apps["/shop/db"]["version"] == "2026-01-01T00:00:09.000Z", "a rollback is a new version"
    assert restored.groups["/shop"].dependencies == ("/other",)
    cyclic = restore_group(root_of(app("/other", dependencies=["/shop/db"])), "/shop",
                           {"/shop/db": root.apps["/shop/db"]}, snap["groups"], version=V1)
    assert isinstance(cyclic, GroupError) and cyclic.message == CYCLE_MESSAGE

