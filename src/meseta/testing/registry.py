"""A real Docker registry on loopback for tests: Debian's ``docker-registry`` (distribution 2.8),
seeded with ``skopeo copy``; optional htpasswd auth and TLS (a self-signed cert made by openssl).

    with LocalRegistry(tmp_path, auth=("user", "pw"), tls=True) as registry:
        registry.push(docker_archive(tmp_path / "a.tar"), "tiny:1")           # Docker schema 2
        registry.push(archive, "tiny:oci", oci=True)                          # OCI manifest
        registry.put_index("tiny", "multi", {"linux/amd64": d1, "linux/arm64": d2})
        registry.url, registry.host, registry.ca, registry.blob_data(digest), registry.blob_gets()

Files under ``<tmp>/registry-<port>/``: config.yml, htpasswd, cert.pem/key.pem, registry.log, storage/
(the registry's rootdirectory: docker/registry/v2/blobs/sha256/<2>/<hex>/data).
"""

from __future__ import annotations

import json
import re
import shutil
import ssl
import subprocess
import time
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from meseta.runtime.serve import free_port

DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
ACCEPT = ("application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json, "
          f"{DOCKER_LIST}, {OCI_INDEX}")


def _bcrypt(password: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt

        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 5))


class LocalRegistry:
    def __init__(self, tmp: Path, auth: tuple[str, str] | None = None, tls: bool = False) -> None:
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.dir = tmp / f"registry-{self.port}"
        self.storage = self.dir / "storage"
        self.storage.mkdir(parents=True)
        self.auth, self.ca = auth, None if not tls else self.dir / "cert.pem"
        self.url = f"{'https' if tls else 'http'}://{self.host}"
        config = ["version: 0.1", "log:", "  level: info", "  accesslog:", "    disabled: false", "storage:",
                  "  filesystem:", f"    rootdirectory: {self.storage}", "  delete:", "    enabled: true",
                  "http:", f"  addr: {self.host}"]
        if tls:
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                            "-keyout", str(self.dir / "key.pem"), "-out", str(self.dir / "cert.pem")],
                           check=True, capture_output=True)
            config += ["  tls:", f"    certificate: {self.dir / 'cert.pem'}", f"    key: {self.dir / 'key.pem'}"]
        if auth is not None:
            (self.dir / "htpasswd").write_text(f"{auth[0]}:{_bcrypt(auth[1])}\n")
            config += ["auth:", "  htpasswd:", "    realm: meseta-test", f"    path: {self.dir / 'htpasswd'}"]
        (self.dir / "config.yml").write_text("\n".join(config) + "\n")
        self.log = self.dir / "registry.log"
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(["docker-registry", "serve", str(self.dir / "config.yml")],
                                            stdout=out, stderr=subprocess.STDOUT)
        self.client = httpx.Client(verify=ssl.create_default_context(cafile=str(self.ca)) if self.ca else True,
                                   timeout=30.0,
                                   auth=httpx.BasicAuth(*auth) if auth else None)
        try:
            self._wait_ready()
        except BaseException:
            self.close()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {self.log.read_text()[-2000:]}")
            try:
                if self.client.get(f"{self.url}/v2/").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"docker-registry did not answer /v2/: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)

    def push(self, archive: Path, repo_tag: str, oci: bool = False) -> str:
        """skopeo copy a docker-archive to ``repo:tag``; the manifest digest the registry holds."""
        argv = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false"]
        if oci:
            argv += ["--format", "oci"]
        if self.auth is not None:
            argv += ["--dest-creds", f"{self.auth[0]}:{self.auth[1]}"]
        subprocess.run([*argv, f"docker-archive:{archive}", f"docker://{self.host}/{repo_tag}"], check=True,
                       capture_output=True, timeout=120)
        repository, _, tag = repo_tag.rpartition(":")
        return self.digest(repository, tag)

    def digest(self, repository: str, reference: str) -> str:
        answer = self.client.head(f"{self.url}/v2/{repository}/manifests/{reference}", headers={"Accept": ACCEPT})
        answer.raise_for_status()
        return str(answer.headers["docker-content-digest"])

    def manifest(self, repository: str, reference: str) -> tuple[str, bytes]:
        """(media type, exact bytes) of a stored manifest."""
        answer = self.client.get(f"{self.url}/v2/{repository}/manifests/{reference}", headers={"Accept": ACCEPT})
        answer.raise_for_status()
        return answer.headers["content-type"], answer.content

    def put_index(self, repository: str, tag: str, platforms: dict[str, str], oci: bool = False) -> str:
        """PUT a manifest list (or OCI index) of manifests already in ``repository``: {"os/arch": digest}."""
        entries = []
        for platform, digest in platforms.items():
            kind, body = self.manifest(repository, digest)
            os_name, _, arch = platform.partition("/")
            entries.append({"mediaType": kind, "digest": digest, "size": len(body),
                            "platform": {"os": os_name, "architecture": arch}})
        kind = OCI_INDEX if oci else DOCKER_LIST
        body = json.dumps({"schemaVersion": 2, "mediaType": kind, "manifests": entries}).encode()
        answer = self.client.put(f"{self.url}/v2/{repository}/manifests/{tag}", content=body,
                                 headers={"Content-Type": kind})
        answer.raise_for_status()
        return str(answer.headers["docker-content-digest"])

    def blob_data(self, digest: str) -> Path:
        hex_digest = digest.removeprefix("sha256:")
        return self.storage / "docker/registry/v2/blobs/sha256" / hex_digest[:2] / hex_digest / "data"

    def blob_gets(self, digest: str | None = None) -> int:
        """GETs of blobs (of one digest) the registry has answered, from its access log."""
        pattern = re.compile(r'"GET /v2/[^ ]+/blobs/(sha256:[0-9a-f]{64}) ')
        found = pattern.findall(self.log.read_text(errors="replace"))
        return sum(1 for d in found if digest is None or d == digest)

    def close(self) -> None:
        self.client.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> LocalRegistry:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def inspect(self, repo_tag: str) -> dict[str, Any]:
        argv = ["skopeo", "inspect", "--tls-verify=false", "--raw"]
        if self.auth is not None:
            argv += ["--creds", f"{self.auth[0]}:{self.auth[1]}"]
        out = subprocess.run([*argv, f"docker://{self.host}/{repo_tag}"], check=True, capture_output=True)
        loaded: dict[str, Any] = json.loads(out.stdout)
        return loaded
