"""The scheduling framework, after kube-scheduler's: extension points,
statuses, per-cycle state, cluster events and the plugin registry.

A plugin is a class with a ``name`` and only the extension points it needs
(``pre_filter``, ``filter``, ``post_filter``, ``pre_score``, ``score``,
``normalize_score``, ``reserve``/``unreserve``, ``bind``); the profile
(:mod:`.profile`) finds which ones a plugin overrides.  A verdict is a
returned :class:`Status`; ``None`` means success, as Go's nil status does.

Plugins also declare the cluster events that could make a pod they
rejected schedulable (:meth:`Plugin.events`); the queue uses them to move
only the pods that can now succeed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterable

if TYPE_CHECKING:
    from .nodeinfo import NodeInfo, PodInfo
    from .profile import Handle

# Status codes, as framework.Code
SUCCESS = 0
ERROR = 1
UNSCHEDULABLE = 2
UNSCHEDULABLE_AND_UNRESOLVABLE = 3
WAIT = 4
SKIP = 5
PENDING = 6
CODE_NAMES = {SUCCESS: "Success", ERROR: "Error", UNSCHEDULABLE: "Unschedulable",
              UNSCHEDULABLE_AND_UNRESOLVABLE: "UnschedulableAndUnresolvable", WAIT: "Wait",
              SKIP: "Skip", PENDING: "Pending"}

MAX_NODE_SCORE = 100


@dataclass(frozen=True)
class Status:
    """A plugin's verdict: a code and the reasons (each one counted in the
    "0/3 nodes are available: ..." message), and the plugin that failed."""

    code: int = SUCCESS
    reasons: tuple[str, ...] = ()
    plugin: str = ""

    @property
    def ok(self) -> bool:
        return self.code == SUCCESS

    @property
    def rejected(self) -> bool:
        return self.code in (UNSCHEDULABLE, UNSCHEDULABLE_AND_UNRESOLVABLE)

    @property
    def message(self) -> str:
        return ", ".join(self.reasons)

    def with_plugin(self, plugin: str) -> "Status":
        return self if self.plugin == plugin else Status(self.code, self.reasons, plugin)

    def __str__(self) -> str:
        return f"{CODE_NAMES.get(self.code, self.code)}: {self.message}"


def unschedulable(*reasons: str) -> Status:
    return Status(UNSCHEDULABLE, reasons)


def unresolvable(*reasons: str) -> Status:
    return Status(UNSCHEDULABLE_AND_UNRESOLVABLE, reasons)


def error(msg: str) -> Status:
    return Status(ERROR, (msg,))


SKIPPED = Status(SKIP)


class CycleState(dict):
    """Data a plugin computes once per scheduling cycle (in pre_filter or
    pre_score) and reads at every node, keyed by the plugin's name."""

    __slots__ = ("skip_filter", "skip_score")

    def __init__(self) -> None:
        super().__init__()
        self.skip_filter: set[str] = set()
        self.skip_score: set[str] = set()

    def clone(self) -> "CycleState":
        """A copy whose plugin data can change independently (values with
        a ``clone()`` are cloned), for preemption's what-if per node."""
        c = CycleState()
        c.skip_filter = set(self.skip_filter)
        c.skip_score = set(self.skip_score)
        for k, v in self.items():
            c[k] = v.clone() if hasattr(v, "clone") else v
        return c


# -- cluster events ---------------------------------------------------------

# resources
NODE = "Node"
POD = "Pod"  # assigned pods (the ones occupying nodes)
UNSCHEDULED_POD = "UnscheduledPod"
# actions (bit flags)
ADD = 1
DELETE = 2
UPDATE_NODE_ALLOCATABLE = 4
UPDATE_NODE_LABEL = 8
UPDATE_NODE_TAINT = 16
UPDATE_NODE_CONDITION = 32
UPDATE_NODE_ANNOTATION = 64
UPDATE_POD_LABEL = 128
UPDATE_POD_SCALE_DOWN = 256
UPDATE_POD_TOLERATION = 512
UPDATE_POD_SCHEDULING_GATES = 1024
UPDATE = (UPDATE_NODE_ALLOCATABLE | UPDATE_NODE_LABEL | UPDATE_NODE_TAINT | UPDATE_NODE_CONDITION
          | UPDATE_NODE_ANNOTATION | UPDATE_POD_LABEL | UPDATE_POD_SCALE_DOWN | UPDATE_POD_TOLERATION
          | UPDATE_POD_SCHEDULING_GATES)
ALL = ADD | DELETE | UPDATE


@dataclass(frozen=True)
class ClusterEvent:
    resource: str
    actions: int
    label: str = ""

    def matches(self, other: "ClusterEvent") -> bool:
        """Whether this registered interest covers the event ``other``."""
        return (self.resource == other.resource or self.resource == "*") and bool(self.actions & other.actions)


# events the scheduler emits (resource, action), named as kube names them
NODE_ADD = ClusterEvent(NODE, ADD, "NodeAdd")
ASSIGNED_POD_ADD = ClusterEvent(POD, ADD, "AssignedPodAdd")
ASSIGNED_POD_DELETE = ClusterEvent(POD, DELETE, "AssignedPodDelete")
UNSCHEDULABLE_TIMEOUT = ClusterEvent("*", ALL, "UnschedulableTimeout")
FORCE_ACTIVATE = ClusterEvent("*", ALL, "ForceActivate")


# -- plugins ------------------------------------------------------------------

@dataclass
class PreFilterResult:
    """Narrows the nodes worth filtering (None: all of them)."""

    node_names: set[str] | None = None


class Plugin:
    """Base of every plugin; override only the extension points you need."""

    name: ClassVar[str] = ""

    def __init__(self, handle: "Handle", args: dict[str, Any] | None = None):
        self.handle = handle
        self.args = args or {}

    def events(self) -> list[ClusterEvent]:
        """Cluster events that could make a pod this plugin rejected fit."""
        return []

    def pre_filter(self, state: CycleState, pod: "PodInfo") -> tuple[PreFilterResult | None, Status | None]:
        raise NotImplementedError

    def filter(self, state: CycleState, pod: "PodInfo", node: "NodeInfo") -> Status | None:
        raise NotImplementedError

    def node_filter(self, state: CycleState, pod: "PodInfo") -> Callable[["NodeInfo"], Status | None]:
        """``filter`` bound to one pod, called at every node; plugins on the
        hot path return a closure specialised for the pod."""
        f = self.filter
        return lambda node: f(state, pod, node)

    async def post_filter(self, state: CycleState, pod: "PodInfo",
                          statuses: dict[str, Status]) -> tuple[str | None, Status | None]:
        """Returns (nominated node name, status)."""
        raise NotImplementedError

    def pre_score(self, state: CycleState, pod: "PodInfo", nodes: list["NodeInfo"]) -> Status | None:
        raise NotImplementedError

    def score(self, state: CycleState, pod: "PodInfo", node: "NodeInfo") -> int:
        raise NotImplementedError

    def score_nodes(self, state: CycleState, pod: "PodInfo", nodes: list["NodeInfo"]) -> list[int]:
        """``score`` at every node; hot-path plugins compute it in one loop."""
        score = self.score
        return [score(state, pod, n) for n in nodes]

    def normalize_score(self, state: CycleState, pod: "PodInfo", scores: list[int]) -> None:
        raise NotImplementedError

    def reserve(self, state: CycleState, pod: "PodInfo", node_name: str) -> Status | None:
        raise NotImplementedError

    def unreserve(self, state: CycleState, pod: "PodInfo", node_name: str) -> None:
        raise NotImplementedError

    async def bind(self, state: CycleState, pod: "PodInfo", node_name: str) -> Status | None:
        raise NotImplementedError

    # pre_filter_extensions (add_pod/remove_pod) let preemption simulate
    # removing victims; plugins with per-cycle state about other pods have them
    def add_pod(self, state: CycleState, pod: "PodInfo", other: "PodInfo", node: "NodeInfo") -> None:
        raise NotImplementedError

    def remove_pod(self, state: CycleState, pod: "PodInfo", other: "PodInfo", node: "NodeInfo") -> None:
        raise NotImplementedError


def implements(plugin: Plugin, point: str) -> bool:
    return getattr(type(plugin), point) is not getattr(Plugin, point)


def default_normalize(scores: list[int], reverse: bool = False) -> None:
    """framework's DefaultNormalizeScore over MaxNodeScore."""
    top = max(scores) if scores else 0
    if top == 0:
        if reverse:
            scores[:] = [MAX_NODE_SCORE] * len(scores)
        return
    for i, s in enumerate(scores):
        s = MAX_NODE_SCORE * s // top
        scores[i] = MAX_NODE_SCORE - s if reverse else s


# -- registry -------------------------------------------------------------------

Factory = Callable[["Handle", dict[str, Any]], Plugin]
REGISTRY: dict[str, type[Plugin]] = {}


def register(cls: type[Plugin]) -> type[Plugin]:
    """Class decorator: makes a plugin available by its ``name``."""
    REGISTRY[cls.name] = cls
    return cls


# kube's default profile (v1 KubeSchedulerConfiguration defaults): the order
# plugins run in at each point, and the score weights
DEFAULT_PLUGINS: tuple[str, ...] = (
    "NodeUnschedulable", "NodeName", "TaintToleration", "NodeAffinity", "NodePorts",
    "NodeResourcesFit", "PodTopologySpread", "InterPodAffinity", "DefaultPreemption",
    "NodeResourcesBalancedAllocation", "DefaultBinder",
)
DEFAULT_WEIGHTS: dict[str, int] = {
    "TaintToleration": 3, "NodeAffinity": 2, "NodeResourcesFit": 1, "PodTopologySpread": 2,
    "InterPodAffinity": 2, "NodeResourcesBalancedAllocation": 1, "ImageLocality": 1,
}


def load_plugins() -> None:
    """Imports every module of the plugins package (each registers itself)."""
    import importlib
    import pkgutil

    from . import plugins
    for m in pkgutil.iter_modules(plugins.__path__):
        importlib.import_module(f"{plugins.__name__}.{m.name}")


def iter_points(plugins: Iterable[Plugin], point: str) -> list[Plugin]:
    return [p for p in plugins if implements(p, point)]
