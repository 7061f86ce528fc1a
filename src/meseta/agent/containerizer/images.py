"""Container images without Docker: pulled from a v2 registry or read from docker-archive / OCI
tarballs into one layer store, each layer unpacked once, each task on its own overlay of them.

Where images come from (``ContainerInfo.mesos.image`` of type DOCKER, or a DOCKER ContainerInfo's
``docker.image``: both name an image the same way)::

    "/abs/path.tar"                      that tarball
    "name:tag" with --docker-registry DIR   DIR/name:tag.tar, or DIR/name.tar for :latest
    "[host[:port]/]repo[:tag|@digest]"   a v2 registry (--docker-registry URL is the default host)

Layout (this module owns it; root = --docker-store-dir, default <work_dir>/provisioner)::

    <root>/blobs/sha256/<hex>          verified config and layer blobs
    <root>/layers/<hex>/rootfs         one layer unpacked as an overlay lower dir (overlay whiteouts);
                                       <hex> = its diff_id (uncompressed sha256), else its blob's
    <root>/layers/<hex>/size           bytes the layer holds (for --image-gc)
    <root>/images/<key>.json           reference, manifest digest, layers, blobs, config; mtime = last use;
                                       key = sha256(registry reference) or sha256(tarball, size, mtime)
    <root>/containers/<id>/            upper/ work/ rootfs/ (the container's overlay), image.json (what it uses)

The container's overlay and process chain: ``meseta.agent.containerizer.rootfs``. The registry
protocol: ``registry``; references and manifests: ``image_refs``; file work: ``layer_files``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import shutil
import tarfile
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from meseta.agent.containerizer.image_config import ImageConfig, image_config
from meseta.agent.containerizer.image_refs import ImageError, image_manifest, parse_reference
from meseta.agent.containerizer.layer_files import copy_hashed, unpack_layer
from meseta.agent.containerizer.registry import Registry
from meseta.agent.containerizer.rootfs import RootfsMount

__all__ = ["Image", "ImageError", "ImageStore"]
log = logging.getLogger(__name__)
DOWNLOADS = 8  # blobs fetched at once per agent
GC_GRACE = 30.0  # seconds an image just pulled or used is spared (its task may not be prepared yet)


@dataclass(frozen=True)
class Image:
    reference: str  # normalised registry reference, or the tarball's path
    digest: str  # the manifest's sha256 (a tarball's: its manifest's, or a docker archive's config's)
    layers: tuple[Path, ...]  # unpacked layer directories, base first (overlay lower dirs)
    config: ImageConfig


@dataclass(frozen=True)
class _Source:
    """Where one pull reads its image from: the registry, or a tarball."""

    key: str
    reference: str
    tarball: Path | None = None


class ImageStore:
    def __init__(self, work_dir: Path, registry: Path | str | None = None, *, store_dir: Path | None = None,
                 docker_config: Path | None = None, insecure: tuple[str, ...] = (), ca_file: Path | None = None,
                 gc_bytes: int | None = None, gc_grace: float = GC_GRACE,
                 event_hooks: Mapping[str, list[Any]] | None = None) -> None:
        self.root = store_dir or work_dir / "provisioner"
        self.registry: Path | None = None  # a directory of tarballs
        self.registry_url: str | None = None
        if isinstance(registry, str) and registry.startswith(("http://", "https://")):
            self.registry_url = registry.rstrip("/")
        elif registry is not None:
            self.registry = Path(registry)
        self.docker_config = read_docker_config(docker_config) if docker_config is not None else {}
        self.insecure, self.ca_file, self.gc_bytes, self.gc_grace = insecure, ca_file, gc_bytes, gc_grace
        self.event_hooks = event_hooks
        self._client: Registry | None = None
        self._pulls: dict[str, asyncio.Future[Image]] = {}  # source key (+force) -> the pull in flight
        self._blobs: dict[str, asyncio.Future[Path]] = {}  # digest -> its fetch in flight
        self._layers: dict[str, asyncio.Future[Path]] = {}  # layer id -> its unpacking in flight
        self._downloads = asyncio.Semaphore(DOWNLOADS)
        self._gc_idle = asyncio.Event()
        self._gc_idle.set()

    # -- where things go ------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        return self.root / "blobs" / "sha256" / digest.removeprefix("sha256:")

    def layer_dir(self, layer_id: str) -> Path:
        return self.root / "layers" / layer_id

    def record_path(self, key: str) -> Path:
        return self.root / "images" / f"{key}.json"

    def client(self) -> Registry:
        if self._client is None:
            self._client = Registry(self.registry_url, self.docker_config, self.insecure, self.ca_file,
                                    self.event_hooks)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    def locate(self, name: str) -> Path:
        if name.startswith("/"):
            path = Path(name)
        elif self.registry is not None:
            repository, _, tag = name.partition(":")
            candidates = [self.registry / f"{repository}:{tag or 'latest'}.tar"]
            if tag in ("", "latest"):
                candidates.append(self.registry / f"{repository}.tar")
            path = next((c for c in candidates if c.exists()), candidates[0])
        else:
            raise ImageError(f"image '{name}': no --docker-registry directory is configured on this agent")
        if not path.is_file():
            raise ImageError(f"image '{name}': no tarball at {path}")
        return path

    def _source(self, name: str) -> _Source:
        if name.startswith("/") or self.registry is not None:
            tarball = self.locate(name)
            stat = tarball.stat()
            key = _hash(f"{tarball}\0{stat.st_size}\0{stat.st_mtime_ns}")
            return _Source(key, str(tarball), tarball)
        if self.registry_url is None:
            raise ImageError(f"image '{name}': no --docker-registry is configured on this agent")
        reference = str(parse_reference(name, self.client().default_host))
        return _Source(_hash(reference), reference)

    # -- pulling --------------------------------------------------------------------------------

    async def pull(self, name: str, force: bool = False) -> Image:
        """The image, its layers in the store: from the record when known (unless ``force``
        re-resolves the tag), else fetched. Concurrent pulls of one image share one fetch."""
        source = self._source(name)
        key = f"{source.key}{'+force' if force else ''}"  # a forced pull never settles for a cached one
        running = self._pulls.get(key)
        if running is None:
            running = asyncio.ensure_future(self._pull(source, force))
            self._pulls[key] = running
            running.add_done_callback(lambda _: self._pulls.pop(key, None))
        return await asyncio.shield(running)

    async def _pull(self, source: _Source, force: bool) -> Image:
        await self._gc_idle.wait()
        if not force:
            known = await asyncio.to_thread(self._load, source.key)
            if known is not None:
                return known
        started = time.monotonic()
        log.info("pulling image %s", source.reference)
        if source.tarball is not None:
            image = await self._from_tarball(source)
        else:
            image = await self._from_registry(source)
        log.info("pulled image %s (%s, %d layers) in %.2fs", source.reference, image.digest, len(image.layers),
                 time.monotonic() - started)
        if self.gc_bytes is not None and len(self._pulls) <= 1:
            await self._collect({image.digest})
        return image

    async def _from_registry(self, source: _Source) -> Image:
        ref = parse_reference(source.reference, self.client().default_host)
        digest, _, _, manifest = await self.client().manifest(ref)
        config_descriptor, layers = image_manifest(manifest)
        config_path = await self._blob(str(config_descriptor["digest"]),
                                       lambda dest: self.client().blob(ref, config_descriptor, dest))
        blob = await asyncio.to_thread(_read_json, config_path, f"image '{ref}': config")
        diff_ids = _diff_ids(blob, len(layers))

        def fetch(descriptor: Mapping[str, Any]) -> Callable[[], Awaitable[Path]]:
            async def fetched() -> Path:
                return await self._blob(str(descriptor["digest"]),
                                        lambda dest: self.client().blob(ref, descriptor, dest))
            return fetched

        ids = [(diff or str(layer["digest"])).removeprefix("sha256:")
               for diff, layer in zip(diff_ids, layers, strict=True)]
        paths = await _settled([self._layer(i, fetch(layer), diff)
                                for i, layer, diff in zip(ids, layers, diff_ids, strict=True)])
        blobs = [str(config_descriptor["digest"]), *(str(layer["digest"]) for layer in layers)]
        return await self._record(source, digest, ids, blobs, blob, paths)

    async def _from_tarball(self, source: _Source) -> Image:
        assert source.tarball is not None
        try:
            digest, config, names = await asyncio.to_thread(self._read_tarball, source.tarball)
        except (OSError, tarfile.TarError, KeyError, ValueError) as exc:
            raise ImageError(f"image '{source.reference}': cannot read the tarball: {exc}") from None
        diff_ids = _diff_ids(config, len(names))
        ids = [(diff or blob).removeprefix("sha256:") for diff, blob in zip(diff_ids, names, strict=True)]

        def known(blob: str) -> Callable[[], Awaitable[Path]]:
            async def path() -> Path:
                return self.blob_path(blob)
            return path

        paths = await _settled([self._layer(i, known(blob), diff)
                                for i, blob, diff in zip(ids, names, diff_ids, strict=True)])
        return await self._record(source, digest, ids, list(names), config, paths)

    def _read_tarball(self, tarball: Path) -> tuple[str, dict[str, Any], list[str]]:
        """(image digest, config, layer blob digests): the layers copied into blobs/ (verified)."""
        blobs = self.root / "blobs" / "sha256"
        with tarfile.open(tarball) as outer:
            names = set(outer.getnames())
            if "manifest.json" in names:
                manifest = json.load(_member(outer, "manifest.json"))
                config_bytes = _member(outer, str(manifest[0]["Config"])).read()
                digest = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
                members = [str(layer) for layer in manifest[0]["Layers"]]
            elif "index.json" in names:
                index = json.load(_member(outer, "index.json"))
                digest = str(index["manifests"][0]["digest"])
                manifest_bytes = _member(outer, _blob_name(digest)).read()
                if "sha256:" + hashlib.sha256(manifest_bytes).hexdigest() != digest:
                    raise ValueError(f"manifest {digest} does not match its digest")
                manifest = json.loads(manifest_bytes)
                config_bytes = _member(outer, _blob_name(manifest["config"]["digest"])).read()
                members = [_blob_name(layer["digest"]) for layer in manifest["layers"]]
            else:
                raise ValueError("neither a docker archive (manifest.json) nor an OCI layout (index.json)")
            layers = []
            for member in members:
                copied = copy_hashed(_member(outer, member), blobs)
                if member.startswith("blobs/sha256/") and copied.removeprefix("sha256:") != member.rpartition("/")[2]:
                    self.blob_path(copied).unlink(missing_ok=True)
                    raise ValueError(f"blob {member} does not match its digest")
                layers.append(copied)
        config = json.loads(config_bytes)
        if not isinstance(config, dict):
            raise ValueError("the image config is not a JSON object")
        return digest, config, layers

    async def _blob(self, digest: str, download: Callable[[Path], Awaitable[None]]) -> Path:
        path = self.blob_path(digest)
        running = self._blobs.get(digest)
        if running is None:
            if path.exists():
                return path

            async def fetch() -> Path:
                async with self._downloads:
                    started = time.monotonic()
                    await download(path)
                log.info("fetched blob %s (%d bytes) in %.2fs", digest, path.stat().st_size,
                         time.monotonic() - started)
                return path
            running = asyncio.ensure_future(fetch())
            self._blobs[digest] = running
            running.add_done_callback(lambda _: self._blobs.pop(digest, None))
        return await asyncio.shield(running)

    async def _layer(self, layer_id: str, blob: Callable[[], Awaitable[Path]], diff_id: str | None) -> Path:
        done = self.layer_dir(layer_id) / "rootfs"
        running = self._layers.get(layer_id)
        if running is None:
            if done.exists():
                return done

            async def unpack() -> Path:
                path = await blob()
                await asyncio.to_thread(self._unpack, path, layer_id, diff_id)
                return done
            running = asyncio.ensure_future(unpack())
            self._layers[layer_id] = running
            running.add_done_callback(lambda _: self._layers.pop(layer_id, None))
        return await asyncio.shield(running)

    def _unpack(self, blob: Path, layer_id: str, diff_id: str | None) -> None:
        directory = self.layer_dir(layer_id)
        staging = directory.with_name(f".{layer_id}.partial")
        _remove(staging)
        try:
            size = unpack_layer(blob, staging / "rootfs", diff_id)
            (staging / "size").write_text(str(size))
            _remove(directory)
            staging.rename(directory)
        except BaseException:
            _remove(staging)
            raise

    async def _record(self, source: _Source, digest: str, ids: list[str], blobs: list[str],
                      config_blob: Mapping[str, Any], paths: list[Path]) -> Image:
        try:
            config = image_config(config_blob)
        except ValueError as exc:
            raise ImageError(f"image '{source.reference}': {exc}") from None
        record = {"reference": source.reference, "digest": digest, "layers": ids, "blobs": blobs,
                  "config": config_blob}
        await asyncio.to_thread(_write_json, self.record_path(source.key), record)
        return Image(source.reference, digest, tuple(paths), config)

    def _load(self, key: str) -> Image | None:
        path = self.record_path(key)
        try:
            record = json.loads(path.read_text())
            config = image_config(record["config"])
        except (OSError, ValueError, KeyError):
            return None
        layers = tuple(self.layer_dir(layer) / "rootfs" for layer in record["layers"])
        if not all(layer.is_dir() for layer in layers):
            return None
        os.utime(path)
        return Image(record["reference"], record["digest"], layers, config)

    # -- containers -----------------------------------------------------------------------------

    def prepare(self, container_id: str, image: Image) -> RootfsMount:
        base = self.root / "containers" / container_id
        mount = RootfsMount(image.layers, base / "upper", base / "work", base / "rootfs")
        for path in (mount.upper, mount.work, mount.rootfs):
            path.mkdir(parents=True, exist_ok=True)
        _write_json(base / "image.json", {"digest": image.digest, "layers": [p.parent.name for p in image.layers]})
        return mount

    def release(self, container_id: str) -> None:
        shutil.rmtree(self.root / "containers" / container_id, ignore_errors=True)

    # -- the cache bound ------------------------------------------------------------------------

    async def collect(self) -> None:
        """Evict least-recently-used images down to ``gc_bytes`` (no-op without a bound): never one
        a prepared container uses, nor one pulled or used in the last ``gc_grace`` seconds."""
        await self._collect(set())

    async def _collect(self, keep: set[str]) -> None:
        if self.gc_bytes is None:
            return
        self._gc_idle.clear()
        try:
            await asyncio.to_thread(self._evict, self.gc_bytes, keep)
        finally:
            self._gc_idle.set()

    def _evict(self, bound: int, keep: set[str]) -> None:
        in_use_digests, in_use_layers = set(keep), set()
        for used in (self.root / "containers").glob("*/image.json"):
            with contextlib.suppress(OSError, ValueError, KeyError):
                record = json.loads(used.read_text())
                in_use_digests.add(record["digest"])
                in_use_layers.update(record["layers"])
        records = {}
        for path in (self.root / "images").glob("*.json"):
            with contextlib.suppress(OSError, ValueError):
                records[path] = (path.stat().st_mtime, json.loads(path.read_text()))
        while self.store_size() > bound:
            recent = time.time() - self.gc_grace
            victims = sorted((when, path) for path, (when, record) in records.items()
                             if record.get("digest") not in in_use_digests and when < recent)
            if not victims:
                log.warning("image store over --image-gc (%d bytes) but every image is in use or recent", bound)
                return
            path = victims[0][1]
            log.info("evicting image %s from the store", records[path][1].get("reference"))
            path.unlink(missing_ok=True)
            del records[path]
            layers = in_use_layers.union(*(r.get("layers", []) for _, r in records.values()))
            blobs = set().union(*(r.get("blobs", []) for _, r in records.values()))
            for layer in (self.root / "layers").glob("*"):
                if layer.name not in layers and not layer.name.startswith("."):
                    _remove(layer)
            for blob in (self.root / "blobs" / "sha256").glob("*"):
                if f"sha256:{blob.name}" not in blobs and not blob.name.startswith(".") \
                        and not blob.name.endswith(".partial"):
                    blob.unlink(missing_ok=True)

    def store_size(self) -> int:
        """Bytes of blobs and unpacked layers in the store (what --image-gc bounds)."""
        total = sum(blob.stat().st_size for blob in (self.root / "blobs" / "sha256").glob("*"))
        for size in (self.root / "layers").glob("*/size"):
            with contextlib.suppress(OSError, ValueError):
                total += int(size.read_text())
        return total


async def _settled(layers: list[Awaitable[Path]]) -> list[Path]:
    """Every layer's path; on a failure, the first error once all have settled (nothing of this
    pull is still being written when it fails)."""
    results = await asyncio.gather(*layers, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [result for result in results if isinstance(result, Path)]


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _diff_ids(config: Mapping[str, Any], count: int) -> list[str | None]:
    """The config's rootfs.diff_ids when they match the layers (else None each: keyed by blob)."""
    rootfs = config.get("rootfs")
    ids = rootfs.get("diff_ids") if isinstance(rootfs, Mapping) else None
    if isinstance(ids, list) and len(ids) == count and all(isinstance(i, str) and len(i) == 71
                                                         and i.startswith("sha256:") for i in ids):
        return list(ids)
    return [None] * count


def read_docker_config(path: Path) -> dict[str, Any]:
    """Docker's config.json (``auths``: credentials per registry); ImageError names what is wrong."""
    return _read_json(path, f"--docker-config {path}")


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        loaded = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ImageError(f"{what}: cannot read it ({path.name}): {exc}") from None
    if not isinstance(loaded, dict):
        raise ImageError(f"{what}: not a JSON object")
    return loaded


def _write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(value))
    os.replace(partial, path)


def _blob_name(digest: str) -> str:
    algorithm, _, value = digest.partition(":")
    return f"blobs/{algorithm}/{value}"


def _member(outer: tarfile.TarFile, name: str) -> IO[bytes]:
    found = outer.extractfile(name)
    if found is None:
        raise KeyError(f"{name} is not a file in the image")
    return found


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
