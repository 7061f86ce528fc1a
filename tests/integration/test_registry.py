"""Pulling images from a real Docker registry (Debian's docker-registry, seeded by skopeo) into the
agent's layer store: tags, digests, OCI manifests, manifest lists, verification, coalescing, shared
layers, Basic and token auth, redirects, HTTPS with a CA, the LRU bound, and a task on a pulled image."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import stat
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from meseta.agent.containerizer.images import Image, ImageError, ImageStore
from meseta.runtime.serve import free_port
from meseta.testing.clusters import master_and_agent
from meseta.testing.images import docker_archive
from meseta.testing.pymesos_recorder import Recorder, driver_for, task
from meseta.testing.registry import LocalRegistry

pytestmark = pytest.mark.integration
SMALL = ("sh", "cat", "test")  # a base layer different from the default one


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[LocalRegistry]:
    with LocalRegistry(tmp_path) as running:
        yield running


def _pull(store: ImageStore, *names: str, force: bool = False) -> list[Image]:
    async def pulls() -> list[Image]:
        try:
            return list(await asyncio.gather(*(store.pull(name, force) for name in names)))
        finally:
            await store.close()
    return asyncio.run(pulls())


def _merged(tmp: Path, image: Image) -> dict[str, str]:
    """The image's layers mounted as an overlay (as a container sees them): a few files' contents."""
    upper, work, merged = tmp / "upper", tmp / "work", tmp / "merged"
    for path in (upper, work, merged):
        path.mkdir(parents=True)
    lower = ":".join(str(layer) for layer in reversed(image.layers))
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lower},upperdir={upper},workdir={work}",
                    str(merged)], check=True)
    try:
        return {name: (merged / name).read_text() if (merged / name).exists() else "<absent>"
                for name in ("etc/os-release", "etc/removed", "hello.txt", "layer2.txt")}
    finally:
        subprocess.run(["umount", str(merged)], check=True)


def test_pull_by_tag_digest_oci_and_manifest_lists(tmp_path: Path, registry: LocalRegistry) -> None:
    digest = registry.push(docker_archive(tmp_path / "tiny.tar", {"Cmd": ["sh", "-c", "echo hi"], "Env": ["A=1"],
                                                                   "WorkingDir": "/srv", "User": "1:2",
                                                                   "ExposedPorts": {"80/tcp": {}}}), "tiny:1")
    oci = registry.push(docker_archive(tmp_path / "three.tar", layers=3), "tiny:oci", oci=True)
    other = registry.push(docker_archive(tmp_path / "small.tar", applets=SMALL), "tiny:arm")
    listed = registry.put_index("tiny", "multi", {"linux/arm64": other, "linux/amd64": digest})
    indexed = registry.put_index("tiny", "index", {"linux/amd64": oci, "linux/arm64": other}, oci=True)
    store = ImageStore(tmp_path / "work", registry.url)
    by_tag, by_digest, from_oci, from_list, from_index = _pull(
        store, "tiny:1", f"tiny@{digest}", "tiny:oci", "tiny:multi", f"{registry.host}/tiny@{indexed}")
    assert by_tag.digest == by_digest.digest == from_list.digest == digest != listed
    assert by_tag.reference == f"{registry.host}/tiny:1" and by_digest.layers == by_tag.layers
    assert from_oci.digest == from_index.digest == oci and from_oci.layers[:2] == by_tag.layers
    config = by_tag.config
    assert (config.cmd, config.env, config.working_dir, config.user, config.exposed_ports) == (
        ("sh", "-c", "echo hi"), ("A=1",), "/srv", "1:2", ("80/tcp",))
    # each layer unpacked once, whiteouts as overlayfs's: a 0:0 character device
    assert len(list((store.root / "layers").iterdir())) == 3
    removed = by_tag.layers[1] / "etc" / "removed"
    assert stat.S_ISCHR(removed.lstat().st_mode) and os.major(removed.lstat().st_rdev) == 0
    assert _merged(tmp_path / "m1", from_oci) == {"etc/os-release": "tiny-image\n", "etc/removed": "<absent>",
                                                  "hello.txt": "from layer 2\n", "layer2.txt": "layer 2\n"}
    for name, named in (("tiny:2", "HTTP 404 .MANIFEST_UNKNOWN"), ("nothing:1", "HTTP 404 .MANIFEST_UNKNOWN"),
                        ("tiny@sha256:" + "0" * 64, "HTTP 404 .MANIFEST_UNKNOWN"), ("Bad:1", "component 'Bad'")):
        with pytest.raises(ImageError, match=named):
            _pull(ImageStore(tmp_path / "work", registry.url), name)


def test_a_corrupted_blob_is_refused_and_leaves_nothing(tmp_path: Path, registry: LocalRegistry) -> None:
    registry.push(docker_archive(tmp_path / "tiny.tar", layers=3), "tiny:1")
    manifest = json.loads(registry.manifest("tiny", "1")[1])
    layer = manifest["layers"][2]["digest"]
    data = registry.blob_data(layer)
    corrupted = bytearray(data.read_bytes())
    corrupted[len(corrupted) // 2] ^= 0xFF
    data.write_bytes(bytes(corrupted))
    store = ImageStore(tmp_path / "work", registry.url)
    with pytest.raises(ImageError, match=f"blob {layer} has sha256 .*corrupted, refused"):
        _pull(store, "tiny:1")
    blobs = {p.name for p in (store.root / "blobs" / "sha256").iterdir()}
    assert layer.removeprefix("sha256:") not in blobs and not any(".partial" in name for name in blobs)
    assert not any(p.name.startswith(".") for p in (store.root / "layers").iterdir())
    assert not (store.root / "images").exists()


def test_concurrent_pulls_coalesce_and_shared_layers_are_stored_once(tmp_path: Path, registry: LocalRegistry) -> None:
    registry.push(docker_archive(tmp_path / "two.tar"), "two:1")
    registry.push(docker_archive(tmp_path / "three.tar", layers=3), "three:1")  # shares two.tar's two layers
    three = json.loads(registry.manifest("three", "1")[1])
    store = ImageStore(tmp_path / "work", registry.url)
    images = _pull(store, *["two:1"] * 25, *["three:1"] * 25)
    assert len({image.digest for image in images}) == 2
    for blob in (three["config"], *three["layers"]):
        assert registry.blob_gets(blob["digest"]) <= 1  # one GET per blob however many tasks pulled
    assert registry.blob_gets() == 5  # two configs and three distinct layers
    assert len(list((store.root / "layers").iterdir())) == 3
    # a cached tag answers without the registry; force re-resolves it but reuses the verified layers
    registry.push(docker_archive(tmp_path / "moved.tar", {"Cmd": ["moved"]}), "two:1")
    cached, = _pull(store, "two:1")
    assert cached.digest == images[0].digest and registry.blob_gets() == 5
    forced, = _pull(store, "two:1", force=True)
    assert forced.digest != cached.digest and forced.config.cmd == ("moved",)
    assert registry.blob_gets() == 6 and forced.layers == cached.layers  # only the new config was fetched


def test_two_agents_pulling_one_image_at_once_each_fetch_its_layers_once(tmp_path: Path,
                                                                          registry: LocalRegistry) -> None:
    registry.push(docker_archive(tmp_path / "three.tar", layers=3), "three:1")
    manifest = json.loads(registry.manifest("three", "1")[1])
    stores = [ImageStore(tmp_path / f"agent{i}", registry.url) for i in range(2)]

    async def both() -> list[Image]:
        try:
            return list(await asyncio.gather(*(store.pull("three:1") for store in stores for _ in range(20))))
        finally:
            for store in stores:
                await store.close()

    images = asyncio.run(both())
    assert len({image.digest for image in images}) == 1
    for blob in (manifest["config"], *manifest["layers"]):
        assert registry.blob_gets(blob["digest"]) == 2  # once per agent, however many of its tasks pulled


def test_basic_auth_with_credentials_from_a_docker_config(tmp_path: Path) -> None:
    with LocalRegistry(tmp_path, auth=("alice", "s3cret")) as registry:
        registry.push(docker_archive(tmp_path / "tiny.tar"), "team/tiny:1")
        config = tmp_path / "config.json"
        for password, expected in (("s3cret", None), ("wrong", "HTTP 401 .UNAUTHORIZED")):
            auth = base64.b64encode(f"alice:{password}".encode()).decode()
            config.write_text(json.dumps({"auths": {registry.host: {"auth": auth}}}))
            store = ImageStore(tmp_path / f"work-{password}", registry.url, docker_config=config)
            if expected is None:
                image, = _pull(store, "team/tiny:1")
                assert len(image.layers) == 2
            else:
                with pytest.raises(ImageError, match=expected):
                    _pull(store, "team/tiny:1")
        with pytest.raises(ImageError, match="asks for Basic credentials and --docker-config has none"):
            _pull(ImageStore(tmp_path / "anonymous", registry.url), "team/tiny:1")


def test_https_with_a_ca(tmp_path: Path) -> None:
    with LocalRegistry(tmp_path, tls=True) as registry:
        registry.push(docker_archive(tmp_path / "tiny.tar"), "tiny:1")
        assert registry.url.startswith("https://") and registry.ca is not None
        image, = _pull(ImageStore(tmp_path / "work", registry.url, ca_file=registry.ca), "tiny:1")
        assert len(image.layers) == 2
        with pytest.raises(ImageError, match="CERTIFICATE_VERIFY_FAILED"):
            _pull(ImageStore(tmp_path / "untrusted", registry.url), "tiny:1")


def test_the_lru_bound_evicts_and_spares_images_in_use(tmp_path: Path, registry: LocalRegistry) -> None:
    for name, applets in (("a", SMALL), ("b", ("sh", "ls")), ("c", ("sh", "echo"))):
        registry.push(docker_archive(tmp_path / f"{name}.tar", applets=applets), f"{name}:1")
    store = ImageStore(tmp_path / "work", registry.url, gc_grace=0)
    a, = _pull(store, "a:1")
    b, = _pull(store, "b:1")
    c, = _pull(store, "c:1")
    store.prepare("in-use", a)  # a is the least recently used, but a container runs on it
    store.gc_bytes = store.store_size() - 1
    store.gc_grace = 3600
    asyncio.run(store.collect())  # all three were pulled just now: their tasks may not be prepared yet
    assert all(layer.exists() for layer in (*a.layers, *b.layers, *c.layers))
    store.gc_grace = 0
    asyncio.run(store.collect())
    assert all(layer.exists() for layer in (*a.layers, *c.layers))
    assert not b.layers[0].exists() and b.layers[1] == a.layers[1]  # b's own layer went, the shared one stays
    assert len(list((store.root / "images").iterdir())) == 2
    store.release("in-use")
    store.gc_bytes = 1
    asyncio.run(store.collect())
    assert not list((store.root / "images").iterdir()) and not list((store.root / "layers").iterdir())
    assert not list((store.root / "blobs" / "sha256").iterdir())
    before = registry.blob_gets()
    store.gc_bytes = None
    again, = _pull(store, "b:1")
    assert registry.blob_gets() == before + 3 and again.digest == b.digest  # fetched again, all of it


def _task_container(kind: str, name: str) -> dict[str, Any]:
    if kind == "DOCKER":
        return {"type": "DOCKER", "docker": {"image": name, "network": "HOST", "force_pull_image": True}}
    return {"type": "MESOS", "mesos": {"image": {"type": "DOCKER", "docker": {"name": name}}}}


def test_a_task_runs_on_a_registry_image(tmp_path: Path, registry: LocalRegistry) -> None:
    registry.push(docker_archive(tmp_path / "three.tar", layers=3), "team/three:1")
    inside = ('test "$(cat /etc/os-release)" = tiny-image && test ! -e /etc/removed && test "$(cat /layer2.txt)"'
              ' = "layer 2" && test ! -e /etc/debian_version && echo ran > out.txt')
    recorder = Recorder()
    with master_and_agent(tmp_path, "--resources", "cpus:4;mem:1024;disk:256", "--docker-registry", registry.url,
                          "--image-gc", "1GB", "--docker-insecure-registry", "reg.lan:5000",
                          "--docker-insecure-registry", "other.lan", "--docker-store-dir", str(tmp_path / "store"),
                          "--isolation", "namespaces/pid") as (master, _), \
            driver_for(master, recorder) as driver:

        def run(task_id: str, kind: str, image: str) -> dict[str, Any]:
            offer = recorder.take_offers()[0]
            driver.launchTasks(offer["id"], [task(task_id, offer, command={"value": inside},
                                                  container=_task_container(kind, image))],
                               filters={"refuse_seconds": 0})
            return recorder.final(task_id)

        assert run("mesos", "MESOS", "team/three:1")["state"] == "TASK_FINISHED"
        assert run("docker", "DOCKER", f"{registry.host}/team/three:1")["state"] == "TASK_FINISHED"
        missing = run("missing", "MESOS", "team/absent:1")
        assert missing["state"] == "TASK_FAILED" and "MANIFEST_UNKNOWN" in missing["message"]
    outputs = list((tmp_path / "agent").glob("slaves/*/frameworks/*/executors/*/runs/*-*/out.txt"))
    assert len(outputs) == 2
    assert len(list((tmp_path / "store" / "layers").iterdir())) == 3
    log = (tmp_path / "agent.log").read_text()
    assert "pulling image" in log and "fetched blob" in log


def test_bearer_tokens_from_the_realm_reused_per_repository(tmp_path: Path) -> None:
    with LocalRegistry(tmp_path, auth=("alice", "s3cret"), token=True) as registry:
        registry.push(docker_archive(tmp_path / "tiny.tar"), "team/tiny:1")
        registry.push(docker_archive(tmp_path / "other.tar", applets=SMALL), "team/other:1")
        config = tmp_path / "config.json"
        config.write_text(json.dumps({"auths": {registry.host: {"username": "alice", "password": "s3cret"}}}))
        asked = len(registry.token_requests)
        store = ImageStore(tmp_path / "work", registry.url, docker_config=config)
        tiny, other = _pull(store, "team/tiny:1", "team/other:1")
        assert len(tiny.layers) == len(other.layers) == 2
        # one token per repository scope, for its manifest and all its blobs
        assert sorted(registry.token_requests[asked:]) == ["repository:team/other:pull", "repository:team/tiny:pull"]
        assert registry.token_server is not None  # the registry checks signatures: a forged one is refused
        token = registry.token_server.sign(["repository:team/tiny:pull"])
        manifest = f"{registry.url}/v2/team/tiny/manifests/1"
        assert httpx.get(manifest, headers={"Authorization": f"Bearer {token}"}).status_code == 200
        forged = token[:-8] + ("AAAAAAAA" if not token.endswith("AAAAAAAA") else "BBBBBBBB")
        assert httpx.get(manifest, headers={"Authorization": f"Bearer {forged}"}).status_code == 401
        config.write_text(json.dumps({"auths": {registry.host: {"username": "alice", "password": "wrong"}}}))
        with pytest.raises(ImageError, match=r"token from http://127\.0\.0\.1:\d+/token: HTTP 401 \(UNAUTHORIZED"):
            _pull(ImageStore(tmp_path / "bad", registry.url, docker_config=config), "team/tiny:1")


class _RedirectingFront:
    """A registry front on 127.0.0.1 that wants Basic auth, proxies manifests to the real registry and
    answers blob GETs with 307 to ``localhost`` (another host to a client), recording what reaches it."""

    def __init__(self, registry: LocalRegistry, auth: str) -> None:
        self.offhost_auth: list[str | None] = []
        front = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/offhost/"):
                    front.offhost_auth.append(self.headers.get("Authorization"))
                    self._relay(self.path.removeprefix("/offhost"))
                elif self.headers.get("Authorization") != auth:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="front"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif "/blobs/" in self.path:
                    self.send_response(307)
                    self.send_header("Location", f"http://localhost:{front.port}/offhost{self.path}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    self._relay(self.path)

            def _relay(self, path: str) -> None:
                answer = httpx.get(f"{registry.url}{path}", headers={"Accept": self.headers.get("Accept", "*/*")})
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("content-type", "application/octet-stream"))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, *args: Any) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_blob_redirects_are_followed_without_the_registrys_authorization(tmp_path: Path,
                                                                          registry: LocalRegistry) -> None:
    registry.push(docker_archive(tmp_path / "tiny.tar"), "tiny:1")
    front = _RedirectingFront(registry, "Basic " + base64.b64encode(b"alice:pw").decode())
    try:
        config = tmp_path / "config.json"
        config.write_text(json.dumps({"auths": {f"127.0.0.1:{front.port}": {"username": "alice",
                                                                             "password": "pw"}}}))
        image, = _pull(ImageStore(tmp_path / "work", f"http://127.0.0.1:{front.port}", docker_config=config),
                       "tiny:1")
        assert len(image.layers) == 2
        assert front.offhost_auth == [None, None, None]  # config and two layers, fetched off-host without it
    finally:
        front.close()


def test_a_server_that_is_no_v2_registry_is_named(tmp_path: Path) -> None:
    from functools import partial
    from http.server import SimpleHTTPRequestHandler

    server = ThreadingHTTPServer(("127.0.0.1", free_port()),
                                 partial(SimpleHTTPRequestHandler, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        with pytest.raises(ImageError, match=r"registry 127\.0\.0\.1:\d+: not a Docker registry v2 API .*HTTP 404"):
            _pull(ImageStore(tmp_path / "work", url), "tiny:1")
    finally:
        server.shutdown()
        server.server_close()
