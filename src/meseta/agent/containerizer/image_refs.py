"""Pure decisions of pulling an image: references, challenges, platforms, credentials, sizes.

    [host[:port]/]repo[/more][:tag|@sha256:<64 hex>]

A first component with ``.`` or ``:``, or ``localhost``, is a registry host (Docker's rule);
otherwise the image is on the agent's default registry. ``library/`` is prefixed only on Docker Hub.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from meseta.protocol.image_reference import DIGEST, DOCKER_HUB, HUB_ALIASES, Reference, ReferenceError
from meseta.protocol.image_reference import parse_reference as _parse_reference


class ImageError(Exception):
    """The image cannot be found, fetched or read; the message names it."""


DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MANIFESTS = (DOCKER_MANIFEST, OCI_MANIFEST)
INDEXES = (DOCKER_LIST, OCI_INDEX)
SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
           "application/vnd.docker.distribution.manifest.v1+prettyjws")
LAYER_TYPES = frozenset({"application/vnd.docker.image.rootfs.diff.tar.gzip",
                         "application/vnd.oci.image.layer.v1.tar+gzip", "application/vnd.oci.image.layer.v1.tar"})
CONFIG_TYPES = frozenset({"application/vnd.docker.container.image.v1+json", "application/vnd.oci.image.config.v1+json"})



def parse_reference(name: str, default_host: str) -> Reference:
    """A reference by Docker's rules (``meseta.protocol.image_reference``); ImageError names what is wrong."""
    try:
        return _parse_reference(name, default_host)
    except ReferenceError as exc:
        raise ImageError(str(exc)) from None


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "bearer" or "basic" (lower case)
    params: Mapping[str, str]


_PARAM = re.compile(r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?')


def parse_challenge(header: str) -> Challenge:
    """One ``WWW-Authenticate`` challenge: ``Bearer realm="..",service="..",scope=".."`` or ``Basic realm=".."``."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() not in ("bearer", "basic"):
        raise ImageError(f"WWW-Authenticate '{header[:200]}': only Bearer and Basic are supported")
    params: dict[str, str] = {}
    position = 0
    while position < len(rest):
        match = _PARAM.match(rest, position)
        if match is None or match.end() == position:
            raise ImageError(f"WWW-Authenticate '{header[:200]}': cannot read its parameters")
        quoted, bare = match.group(2), match.group(3)
        params[match.group(1).lower()] = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
        position = match.end()
    if scheme.lower() == "bearer" and not params.get("realm"):
        raise ImageError(f"WWW-Authenticate '{header[:200]}': a Bearer challenge without a realm")
    return Challenge(scheme.lower(), params)


def pull_scope(repository: str) -> str:
    return f"repository:{repository}:pull"


def pick_platform(index: Mapping[str, Any], os: str = "linux", architecture: str = "amd64") -> Mapping[str, Any]:
    """The descriptor of the os/architecture entry of a manifest list or OCI index."""
    manifests = index.get("manifests")
    if not isinstance(manifests, list):
        raise ImageError("manifest list: 'manifests' must be a list")
    offered = []
    for entry in manifests:
        if not isinstance(entry, Mapping):
            raise ImageError("manifest list: every entry of 'manifests' must be an object")
        platform = entry.get("platform") or {}
        offered.append(f"{platform.get('os')}/{platform.get('architecture')}")
        if platform.get("os") == os and platform.get("architecture") == architecture:
            check_descriptor(entry, "manifest list entry")
            return entry
    raise ImageError(f"manifest list: no {os}/{architecture} image (it has {', '.join(offered) or 'none'})")


def check_descriptor(descriptor: Any, what: str) -> Mapping[str, Any]:
    """A descriptor with a sha256 digest and a non-negative size, or ImageError naming ``what``."""
    if not isinstance(descriptor, Mapping):
        raise ImageError(f"{what}: must be an object")
    digest, size = descriptor.get("digest"), descriptor.get("size")
    if not isinstance(digest, str) or not DIGEST.fullmatch(digest):
        raise ImageError(f"{what}: digest {digest!r} is not sha256:<64 hex> (only sha256 is supported)")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ImageError(f"{what} {digest}: size {size!r} must be a non-negative integer")
    if descriptor.get("urls"):
        raise ImageError(f"{what} {digest}: foreign/non-distributable layers (urls) are not supported")
    return descriptor


def image_manifest(manifest: Mapping[str, Any]) -> tuple[Mapping[str, Any], list[Mapping[str, Any]]]:
    """The config descriptor and layer descriptors of a schema-2 / OCI image manifest, checked."""
    if manifest.get("schemaVersion") != 2:
        raise ImageError(f"manifest: schemaVersion {manifest.get('schemaVersion')!r} is not supported (only 2)")
    config = check_descriptor(manifest.get("config"), "manifest config")
    if config.get("mediaType") not in (None, *CONFIG_TYPES):
        raise ImageError(f"manifest config: media type {config.get('mediaType')} is not an image config")
    layers = manifest.get("layers")
    if not isinstance(layers, list) or not layers:
        raise ImageError("manifest: 'layers' must be a non-empty list")
    for number, layer in enumerate(layers):
        check_descriptor(layer, f"manifest layer {number}")
        kind = layer.get("mediaType")
        if kind is not None and kind not in LAYER_TYPES:
            raise ImageError(f"manifest layer {number} {layer['digest']}: media type {kind} is not supported")
    return config, layers


def manifest_kind(content_type: str, manifest: Mapping[str, Any]) -> str:
    """The manifest's media type: the Content-Type, else its own mediaType; schema 1 refused by name."""
    kind = content_type.split(";")[0].strip()
    if kind in ("", "application/json", "application/octet-stream", "text/plain"):
        kind = str(manifest.get("mediaType") or "")
    if kind in SCHEMA1 or manifest.get("schemaVersion") == 1:
        raise ImageError("manifest: Docker schema 1 (v1+prettyjws) manifests are not supported")
    if kind not in (*MANIFESTS, *INDEXES):
        if manifest.get("schemaVersion") == 2 and isinstance(manifest.get("manifests"), list):
            return OCI_INDEX
        if manifest.get("schemaVersion") == 2 and "layers" in manifest:
            return OCI_MANIFEST
        raise ImageError(f"manifest: media type '{kind}' is not supported")
    return kind


def _registry_key(key: str) -> str:
    key = re.sub(r"^[a-z]+://", "", key).split("/")[0]
    return DOCKER_HUB if key in HUB_ALIASES else key


def credentials_for(config: Mapping[str, Any], host: str) -> tuple[str, str] | None:
    """User and password for ``host`` from a docker ``config.json`` (``auths``), or None."""
    auths = config.get("auths") or {}
    if not isinstance(auths, Mapping):
        raise ImageError("docker config: 'auths' must be an object")
    for key, entry in auths.items():
        if _registry_key(str(key)) != host or not isinstance(entry, Mapping):
            continue
        if entry.get("auth"):
            try:
                user, colon, password = base64.b64decode(str(entry["auth"]), validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise ImageError(f"docker config: auths.{key}.auth is not base64 of user:password") from None
            if not colon:
                raise ImageError(f"docker config: auths.{key}.auth is not user:password")
            return user, password
        if isinstance(entry.get("username"), str) and isinstance(entry.get("password"), str):
            return entry["username"], entry["password"]
    return None


_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "M": 1024**2, "MB": 1024**2, "G": 1024**3, "GB": 1024**3,
          "T": 1024**4, "TB": 1024**4}


def parse_size(text: str) -> int:
    """``2GB``, ``512MB``, ``1048576``: bytes (powers of 1024)."""
    match = re.fullmatch(r"\s*([0-9]+)\s*([A-Za-z]*)\s*", text)
    if match is None or match.group(2).upper() not in _UNITS:
        raise ValueError(f"size '{text}': expected a number with an optional unit B, KB, MB, GB or TB")
    return int(match.group(1)) * _UNITS[match.group(2).upper()]


def accept_header(types: Sequence[str] = (*MANIFESTS, *INDEXES)) -> str:
    return ", ".join(types)
