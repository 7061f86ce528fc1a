"""Image references, auth challenges, manifest lists and docker config credentials (pure)."""

from __future__ import annotations

import base64

import pytest

from meseta.agent.containerizer.image_refs import (
    DOCKER_HUB,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    ImageError,
    Reference,
    credentials_for,
    image_manifest,
    manifest_kind,
    parse_challenge,
    parse_reference,
    parse_size,
    pick_platform,
)

DIGEST = "sha256:" + "ab" * 32


def test_references_follow_dockers_rules() -> None:
    here = "127.0.0.1:5000"
    assert parse_reference("busybox", here) == Reference(here, "busybox", "latest")
    assert parse_reference("team/app:1.2", here) == Reference(here, "team/app", "1.2")
    assert parse_reference("localhost/app", here) == Reference("localhost", "app", "latest")
    assert parse_reference("reg.example:443/a/b/c:v1", here) == Reference("reg.example:443", "a/b/c", "v1")
    assert parse_reference(f"app@{DIGEST}", here) == Reference(here, "app", None, DIGEST)
    assert parse_reference(f"app:1@{DIGEST}", here).reference == DIGEST
    assert parse_reference("busybox", "docker.io") == Reference(DOCKER_HUB, "library/busybox", "latest")
    assert parse_reference("docker.io/team/app", here) == Reference(DOCKER_HUB, "team/app", "latest")
    assert parse_reference("app", here).reference == "latest"
    assert str(parse_reference("a/b:2", here)) == f"{here}/a/b:2"


@pytest.mark.parametrize(("name", "named"), [
    ("", "not a valid reference"), ("Upper/app", "component 'Upper'"), ("app:bad tag", "not a valid reference"),
    ("app:-x", "tag '-x'"), ("app@sha256:123", "digest 'sha256:123'"), ("app@md5:" + "a" * 32, "digest"),
    ("a//b", "component ''"), ("a/" + "b" * 300, "256 characters"),
    ("bad_host:x:y/app", "registry host 'bad_host:x:y'"), ("app..x", "component 'app..x'"),
])
def test_bad_references_are_refused_by_name(name: str, named: str) -> None:
    with pytest.raises(ImageError, match=named):
        parse_reference(name, "127.0.0.1:5000")


def test_challenges() -> None:
    bearer = parse_challenge('Bearer realm="https://auth.example/token",service="registry.example",'
                             'scope="repository:team/app:pull"')
    assert bearer.scheme == "bearer"
    assert dict(bearer.params) == {"realm": "https://auth.example/token", "service": "registry.example",
                                   "scope": "repository:team/app:pull"}
    assert parse_challenge('Basic realm="meseta-test"').params == {"realm": "meseta-test"}
    for bad, named in (("Digest realm=x", "only Bearer and Basic"), ('Bearer service="x"', "without a realm"),
                       ('Bearer realm="x" ,,=', "cannot read")):
        with pytest.raises(ImageError, match=named):
            parse_challenge(bad)


def test_a_manifest_list_resolves_to_linux_amd64() -> None:
    arm = {"digest": "sha256:" + "cd" * 32, "size": 10, "platform": {"os": "linux", "architecture": "arm64"}}
    amd = {"digest": DIGEST, "size": 12, "platform": {"os": "linux", "architecture": "amd64"}}
    assert pick_platform({"manifests": [arm, amd]}) == amd
    with pytest.raises(ImageError, match=r"no linux/amd64 image \(it has linux/arm64\)"):
        pick_platform({"manifests": [arm]})
    with pytest.raises(ImageError, match="size"):
        pick_platform({"manifests": [{**amd, "size": -1}]})


def test_manifest_kinds_and_schema_1_refused() -> None:
    assert manifest_kind(DOCKER_MANIFEST, {}) == DOCKER_MANIFEST
    assert manifest_kind("application/json", {"mediaType": DOCKER_LIST}) == DOCKER_LIST
    assert manifest_kind("", {"schemaVersion": 2, "manifests": []}) == OCI_INDEX
    with pytest.raises(ImageError, match="schema 1"):
        manifest_kind("application/vnd.docker.distribution.manifest.v1+prettyjws", {"schemaVersion": 1})
    with pytest.raises(ImageError, match="'text/html' is not supported"):
        manifest_kind("text/html", {})


def test_image_manifests_are_checked() -> None:
    layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": DIGEST, "size": 3}
    config = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": DIGEST, "size": 2}
    assert image_manifest({"schemaVersion": 2, "config": config, "layers": [layer]}) == (config, [layer])
    for manifest, named in (
            ({"schemaVersion": 2, "config": config, "layers": []}, "non-empty"),
            ({"schemaVersion": 2, "config": config, "layers": [{**layer, "urls": ["http://x"]}]}, "foreign"),
            ({"schemaVersion": 2, "config": config, "layers": [{**layer, "mediaType": "x+zstd"}]}, "x.zstd"),
            ({"schemaVersion": 2, "config": {**config, "digest": "sha512:ab"}, "layers": [layer]}, "only sha256")):
        with pytest.raises(ImageError, match=named):
            image_manifest(manifest)


def test_credentials_from_a_docker_config() -> None:
    token = base64.b64encode(b"alice:s3cr:et").decode()
    config = {"auths": {"https://127.0.0.1:5000/v1/": {"auth": token}, "reg.example": {"username": "bob",
                                                                                        "password": "pw"},
                        "https://index.docker.io/v1/": {"auth": base64.b64encode(b"hub:pw").decode()}}}
    assert credentials_for(config, "127.0.0.1:5000") == ("alice", "s3cr:et")
    assert credentials_for(config, "reg.example") == ("bob", "pw")
    assert credentials_for(config, DOCKER_HUB) == ("hub", "pw")
    assert credentials_for(config, "other") is None
    with pytest.raises(ImageError, match=r"auths\.x\.auth is not base64"):
        credentials_for({"auths": {"x": {"auth": "!!"}}}, "x")


def test_sizes() -> None:
    assert parse_size("2GB") == 2 * 1024**3 and parse_size("512mb") == 512 * 1024**2 and parse_size("10") == 10
    with pytest.raises(ValueError, match="size '2 parsecs'"):
        parse_size("2 parsecs")
