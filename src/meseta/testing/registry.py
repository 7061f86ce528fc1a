"""A real Docker registry on loopback for tests: Debian's ``docker-registry`` (distribution 2.8),
seeded with ``skopeo copy``; optional htpasswd auth, token auth (``auth.token``: a small token
server here signs RS256 JWTs with openssl, the registry checks them against its rootcertbundle) and
TLS (a self-signed cert made by openssl).

    with LocalRegistry(tmp_path, auth=("user", "pw"), tls=True) as registry:
        registry.push(docker_archive(tmp_path / "a.tar"), "tiny:1")           # Docker schema 2
        registry.push(archive, "tiny:oci", oci=True)                          # OCI manifest
        registry.put_index("tiny", "multi", {"linux/amd64": d1, "linux/arm64": d2})
        registry.url, registry.host, registry.ca, registry.blob_data(digest), registry.blob_gets()
    LocalRegistry(tmp_path, auth=("user", "pw"), token=True).token_requests  # scopes asked, in order

Files under ``<tmp>/registry-<port>/``: config.yml, htpasswd, cert.pem/key.pem, token-cert.pem/
token-key.pem, registry.log, storage/ (the registry's rootdirectory: docker/registry/v2/blobs/
sha256/<2>/<hex>/data).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import ssl
import subprocess
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

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
    def __init__(self, tmp: Path, auth: tuple[str, str] | None = None, tls: bool = False,
                 token: bool = False) -> None:
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
        self.token_server: TokenServer | None = None
        if token:
            self.token_server = TokenServer(self.dir, auth)
            config += ["auth:", "  token:", f"    realm: {self.token_server.url}/token", f"    service: {SERVICE}",
                       f"    issuer: {ISSUER}", f"    rootcertbundle: {self.token_server.cert}"]
        elif auth is not None:
            (self.dir / "htpasswd").write_text(f"{auth[0]}:{_bcrypt(auth[1])}\n")
            config += ["auth:", "  htpasswd:", "    realm: meseta-test", f"    path: {self.dir / 'htpasswd'}"]
        (self.dir / "config.yml").write_text("\n".join(config) + "\n")
        self.log = self.dir / "registry.log"
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(["docker-registry", "serve", str(self.dir / "config.yml")],
                                            stdout=out, stderr=subprocess.STDOUT)
        self.client = httpx.Client(verify=ssl.create_default_context(cafile=str(self.ca)) if self.ca else True,
                                   timeout=30.0, auth=self._client_auth())
        try:
            self._wait_ready()
        except BaseException:
            self.close()
            raise

    def _client_auth(self) -> httpx.Auth | None:
        if self.token_server is not None:
            return _Bearer(self.token_server, self.auth)
        return httpx.BasicAuth(*self.auth) if self.auth else None

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

    @property
    def token_requests(self) -> list[str]:
        return list(self.token_server.requests) if self.token_server is not None else []

    def close(self) -> None:
        if self.token_server is not None:
            self.token_server.close()
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


SERVICE, ISSUER = "meseta-registry", "meseta-test-issuer"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """A token endpoint (docs/spec/auth/token.md) on loopback: checks Basic credentials when it has
    some, grants what is asked, and signs RS256 JWTs whose x5c is its self-signed certificate."""

    def __init__(self, directory: Path, auth: tuple[str, str] | None) -> None:
        self.cert, self.key = directory / "token-cert.pem", directory / "token-key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=meseta-token", "-keyout", str(self.key), "-out", str(self.cert)],
                       check=True, capture_output=True)
        der = subprocess.run(["openssl", "x509", "-in", str(self.cert), "-outform", "DER"], check=True,
                             capture_output=True).stdout
        self.x5c, self.auth = base64.b64encode(der).decode(), auth
        self.requests: list[str] = []  # the scope of each token request
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                server.requests.append(" ".join(query.get("scope", [])))
                if server.auth is not None:
                    expected = "Basic " + base64.b64encode(":".join(server.auth).encode()).decode()
                    if self.headers.get("Authorization") != expected:
                        self._answer(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]})
                        return
                self._answer(200, {"token": server.sign(query.get("scope", [])), "expires_in": 300})

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def sign(self, scopes: list[str]) -> str:
        access = []
        for scope in " ".join(scopes).split():
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        claims = {"iss": ISSUER, "sub": self.auth[0] if self.auth else "", "aud": SERVICE, "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": os.urandom(8).hex(), "access": access}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(self.key)],
                                   input=signing_input.encode(), check=True, capture_output=True).stdout
        return f"{signing_input}.{_b64(signature)}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


class _Bearer(httpx.Auth):
    """The fixture's own client for a token registry: asks the token server for what a 401 names."""

    def __init__(self, tokens: TokenServer, auth: tuple[str, str] | None) -> None:
        self.tokens, self.auth = tokens, auth

    def auth_flow(self, request: httpx.Request) -> Any:
        response = yield request
        if response.status_code == 401:
            params = dict(re.findall(r'(\w+)="([^"]*)"', response.headers.get("www-authenticate", "")))
            scopes = [params["scope"]] if "scope" in params else []
            request.headers["Authorization"] = f"Bearer {self.tokens.sign(scopes)}"
            yield request
