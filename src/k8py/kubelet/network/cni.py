"""A CNI runner: executes plugin binaries as the CNI specification says.

Follows CNI 1.0.0 (and reads 0.4.0 results too): a plugin is an executable
found in `CNI_PATH`; the runtime sets `CNI_COMMAND` (ADD, DEL, CHECK,
VERSION), `CNI_CONTAINERID`, `CNI_NETNS`, `CNI_IFNAME`, `CNI_ARGS` and
`CNI_PATH`, writes the plugin's network configuration on stdin and reads a
result (or an error object) on stdout.

A configuration *list* chains plugins, as libcni does: each plugin's config
is its own dict plus the list's `name` and `cniVersion`, the previous
plugin's result as `prevResult`, and `runtimeConfig` holding the runtime's
capability arguments that the plugin declared in `capabilities` (here
`portMappings` for portmap). ADD runs the plugins in order; DEL in reverse
order with the cached ADD result as prevResult; CHECK in order with it too.

A plugin that fails exits non-zero and prints `{"code", "msg", "details"}`;
that becomes a `CNIError` carrying those fields, so the kubelet can show the
plugin's own words.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
from dataclasses import dataclass, field
from typing import Any

from k8py.kubelet import execute

DEFAULT_CNI_PATH = ("/usr/lib/cni", "/opt/cni/bin")
SPEC_VERSION = "1.0.0"


class CNIError(Exception):
    """A plugin failed; `code`, `msg` and `details` are the plugin's error."""

    def __init__(
        self, plugin: str, command: str, code: int, msg: str, details: str = ""
    ) -> None:
        self.plugin = plugin
        self.command = command
        self.code = code
        self.msg = msg
        self.details = details
        text = f"CNI plugin {plugin} {command} failed (code {code}): {msg}"
        if details:
            text += f": {details}"
        super().__init__(text)


@dataclass(frozen=True)
class IPConfig:
    address: str  # CIDR form, "10.42.0.5/24"
    gateway: str | None = None
    interface: int | None = None

    @property
    def ip(self) -> str:
        return self.address.split("/", 1)[0]

    @property
    def version(self) -> int:
        return 6 if ":" in self.address else 4


@dataclass(frozen=True)
class Interface:
    name: str
    mac: str = ""
    sandbox: str = ""  # the netns path when the interface is inside it


@dataclass(frozen=True)
class Result:
    """A parsed CNI result; `raw` is the plugin's JSON as it came."""

    cni_version: str
    interfaces: tuple[Interface, ...] = ()
    ips: tuple[IPConfig, ...] = ()
    routes: tuple[dict[str, Any], ...] = ()
    dns: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Result:
        ifaces = tuple(
            Interface(i.get("name", ""), i.get("mac", ""), i.get("sandbox", ""))
            for i in data.get("interfaces") or ()
        )
        ips = tuple(
            IPConfig(i["address"], i.get("gateway"), i.get("interface"))
            for i in data.get("ips") or ()
        )
        return cls(
            cni_version=str(data.get("cniVersion", "")),
            interfaces=ifaces,
            ips=ips,
            routes=tuple(data.get("routes") or ()),
            dns=dict(data.get("dns") or {}),
            raw=data,
        )

    def sandbox_ips(self) -> list[IPConfig]:
        """The addresses on interfaces inside the namespace (a result also
        lists the host-side veth and the bridge)."""
        out = []
        for ip in self.ips:
            if ip.interface is None or ip.interface >= len(self.interfaces):
                out.append(ip)
            elif self.interfaces[ip.interface].sandbox:
                out.append(ip)
        return out


@dataclass(frozen=True)
class RuntimeArgs:
    """What the runtime says about one attachment."""

    container_id: str
    netns: str
    ifname: str = "eth0"
    cni_args: tuple[tuple[str, str], ...] = ()  # CNI_ARGS key=value pairs
    capability_args: dict[str, Any] = field(default_factory=dict)

    def env(self, command: str, cni_path: str) -> dict[str, str]:
        env = {
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": self.container_id,
            "CNI_NETNS": self.netns,
            "CNI_IFNAME": self.ifname,
            "CNI_PATH": cni_path,
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        }
        if self.cni_args:
            env["CNI_ARGS"] = ";".join(f"{k}={v}" for k, v in self.cni_args)
        return env


class CNIRunner:
    """Runs plugins of one configuration list (`conflist`, a dict as in a
    .conflist file: cniVersion, name, plugins)."""

    def __init__(
        self, conflist: dict[str, Any], cni_path: tuple[str, ...] = DEFAULT_CNI_PATH
    ) -> None:
        if not conflist.get("plugins"):
            raise ValueError("a CNI configuration list needs plugins")
        self.conflist = conflist
        self.cni_path = tuple(cni_path)
        self.name = str(conflist.get("name", ""))
        self.version = str(conflist.get("cniVersion", SPEC_VERSION))

    async def add(self, rt: RuntimeArgs) -> Result:
        prev: dict[str, Any] | None = None
        for plugin in self.conflist["plugins"]:
            out = await self._exec(plugin, "ADD", rt, prev)
            if out is None:
                raise CNIError(plugin["type"], "ADD", 999, "plugin printed no result")
            prev = out
        assert prev is not None
        return Result.parse(prev)

    async def delete(self, rt: RuntimeArgs, prev: dict[str, Any] | None) -> None:
        """DEL in reverse order. Every plugin runs even if one fails; the
        first failure is raised at the end."""
        first: CNIError | None = None
        for plugin in reversed(self.conflist["plugins"]):
            try:
                await self._exec(plugin, "DEL", rt, prev)
            except CNIError as e:
                first = first or e
        if first is not None:
            raise first

    async def check(
        self, rt: RuntimeArgs, prev: dict[str, Any], skip: frozenset[str] = frozenset()
    ) -> None:
        """CHECK in order; plugin types in `skip` are left out."""
        for plugin in self.conflist["plugins"]:
            if plugin.get("type") not in skip:
                await self._exec(plugin, "CHECK", rt, prev)

    def plugin_config(
        self, plugin: dict[str, Any], rt: RuntimeArgs, prev: dict[str, Any] | None
    ) -> dict[str, Any]:
        """The config written on a plugin's stdin (libcni's buildOneConfig
        and injectRuntimeConfig)."""
        conf = copy.deepcopy(plugin)
        conf["name"] = self.name
        conf["cniVersion"] = self.version
        if prev is not None:
            conf["prevResult"] = prev
        caps = plugin.get("capabilities") or {}
        runtime = {k: v for k, v in rt.capability_args.items() if caps.get(k)}
        if runtime:
            conf["runtimeConfig"] = runtime
        return conf

    def find_plugin(self, name: str) -> str:
        if "/" in name:
            raise CNIError(name, "find", 999, "bad plugin name")
        for d in self.cni_path:
            path = os.path.join(d, name)
            if os.path.isfile(path) and os.access(path, os.X_OK):
                return path
        raise CNIError(
            name, "find", 999, f"plugin {name} not found in {':'.join(self.cni_path)}"
        )

    async def _exec(
        self,
        plugin: dict[str, Any],
        command: str,
        rt: RuntimeArgs,
        prev: dict[str, Any] | None,
    ) -> dict[str, Any] | None:
        ptype = str(plugin.get("type", ""))
        binary = self.find_plugin(ptype)
        stdin = json.dumps(self.plugin_config(plugin, rt, prev)).encode()
        return await exec_plugin(
            binary, stdin, rt.env(command, ":".join(self.cni_path)), ptype, command
        )


async def exec_plugin(
    binary: str, stdin: bytes, env: dict[str, str], ptype: str, command: str
) -> dict[str, Any] | None:
    """Run one plugin binary; returns its parsed stdout (None if empty)."""
    returncode, out, err = await execute.run([binary], input=stdin, env=env)
    if returncode != 0:
        try:
            e = json.loads(out)
            raise CNIError(
                ptype, command, int(e.get("code", 999)), str(e.get("msg", "")),
                str(e.get("details", "")),
            )
        except (ValueError, AttributeError):
            text = (out + err).decode(errors="replace").strip()
            raise CNIError(
                ptype, command, 999, f"exit status {returncode}: {text}"
            ) from None
    if not out.strip():
        return None
    try:
        data = json.loads(out)
    except ValueError:
        raise CNIError(ptype, command, 999, f"bad JSON result: {out[:200]!r}") from None
    if not isinstance(data, dict):
        raise CNIError(ptype, command, 999, "result is not a JSON object")
    return data
