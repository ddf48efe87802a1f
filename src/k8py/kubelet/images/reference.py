"""Image references parsed the way Docker parses them.

`busybox` is `docker.io/library/busybox:latest`; `user/app` is
`docker.io/user/app:latest`; the first path component is a registry host when
it contains a dot or a colon or is `localhost`; `name@sha256:...` pins a
digest (a tag given with it is kept for display but the digest wins).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_DOMAIN = "docker.io"
DOCKER_API_HOST = "registry-1.docker.io"
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_PATH = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")


class InvalidReference(ValueError):
    """An image reference that does not parse."""


@dataclass(frozen=True)
class Reference:
    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """`docker.io/library/busybox`: the repository without tag or digest."""
        return f"{self.domain}/{self.path}"

    @property
    def api_host(self) -> str:
        """The host that serves the v2 API (Docker Hub's differs from its name)."""
        return DOCKER_API_HOST if self.domain == DEFAULT_DOMAIN else self.domain

    @property
    def object(self) -> str:
        """What to ask /v2/<path>/manifests/ for: the digest, else the tag."""
        return self.digest or self.tag or "latest"

    def with_digest(self, digest: str) -> "Reference":
        return Reference(self.domain, self.path, None, digest)

    def __str__(self) -> str:
        s = self.name
        if self.tag:
            s += ":" + self.tag
        if self.digest:
            s += "@" + self.digest
        return s


def parse_reference(text: str) -> Reference:
    """Parse and normalize `text`; a missing tag becomes `latest` unless a digest is given."""
    s = text.strip()
    if not s:
        raise InvalidReference("empty image reference")
    digest = None
    if "@" in s:
        s, digest = s.split("@", 1)
        if not _DIGEST.match(digest):
            raise InvalidReference(f"invalid digest in {text!r}")
    tag = None
    slash = s.rfind("/")
    colon = s.rfind(":")
    if colon > slash:
        s, tag = s[:colon], s[colon + 1:]
        if not _TAG.match(tag):
            raise InvalidReference(f"invalid tag in {text!r}")
    first, _, rest = s.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        domain, path = first, rest
    else:
        domain, path = DEFAULT_DOMAIN, s
    if domain == "index.docker.io":
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = "library/" + path
    if not _PATH.match(path):
        raise InvalidReference(f"invalid repository name in {text!r}")
    if tag is None and digest is None:
        tag = "latest"
    return Reference(domain, path, tag, digest)


def normalize(text: str) -> str:
    """The canonical string form of a reference (`busybox` → `docker.io/library/busybox:latest`)."""
    return str(parse_reference(text))
