"""The Deployment controller's arithmetic, hashing and pod ranking, as kube computes them."""

from __future__ import annotations

from k8py.controllers import deployment_util as du
from k8py.controllers.controller_utils import compute_hash, deletion_order


def deploy(replicas: int = 10, surge: object = "25%", unavailable: object = "25%", strategy: str = "RollingUpdate",
           **spec: object) -> dict:
    st: dict = {"type": strategy}
    if strategy == "RollingUpdate":
        st["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    return {"metadata": {"name": "web", "namespace": "default", "uid": "d1", "generation": 1},
            "spec": dict({"replicas": replicas, "strategy": st, "selector": {"matchLabels": {"app": "web"}},
                          "template": {"metadata": {"labels": {"app": "web"}},
                                       "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}}, **spec),
            "status": {}}


def rs(name: str, replicas: int, *, available: int = 0, created: str = "2024-01-01T00:00:00Z",
       annotations: dict | None = None) -> dict:
    return {"metadata": {"name": name, "uid": f"uid-{name}", "creationTimestamp": created,
                         "annotations": annotations or {}},
            "spec": {"replicas": replicas}, "status": {"replicas": replicas, "availableReplicas": available}}


def test_fenceposts_round_surge_up_and_unavailable_down():
    assert du.resolve_fenceposts("25%", "25%", 10) == (3, 2)
    assert du.resolve_fenceposts("25%", "25%", 1) == (1, 0)
    assert du.resolve_fenceposts(0, "1%", 2) == (0, 1)  # both zero: one may be unavailable
    assert du.resolve_fenceposts(2, 0, 5) == (2, 0)
    assert du.max_surge(deploy(10)) == 3 and du.max_unavailable(deploy(10)) == 2
    assert du.max_unavailable(deploy(0)) == 0
    assert du.max_surge(deploy(10, strategy="Recreate")) == 0


def test_new_rs_replicas_within_surge():
    d = deploy(10)
    new, old = rs("new", 0), rs("old", 10)
    assert du.new_rs_new_replicas(d, [old, new], new) == 3
    assert du.new_rs_new_replicas(d, [rs("old", 13), new], new) == 0
    assert du.new_rs_new_replicas(deploy(10, strategy="Recreate"), [old, new], new) == 10


def test_hash_is_stable_and_collision_count_changes_it():
    t = deploy()["spec"]["template"]
    h = compute_hash(t, None)
    assert h == compute_hash({"spec": t["spec"], "metadata": t["metadata"]}, None)
    assert h != compute_hash(t, 1)
    assert set(h) <= set("bcdfghjklmnpqrstvwxz2456789") and 6 <= len(h) <= 10


def test_new_and_old_replica_sets_ignore_the_hash_label():
    d = deploy()
    same = rs("same", 1)
    same["spec"]["template"] = {"metadata": {"labels": {"app": "web", "pod-template-hash": "abc"}},
                                "spec": d["spec"]["template"]["spec"]}
    other = rs("other", 1)
    other["spec"]["template"] = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}}
    assert du.find_new_rs(d, [other, same]) is same
    assert du.find_old_rss(d, [other, same]) == ([other], [other])


def test_revision_annotations_and_history():
    d = deploy()
    d["metadata"]["annotations"] = {"kubernetes.io/change-cause": "v2", du.REVISION: "9",
                                    du.LAST_APPLIED: "{}"}
    r = rs("r", 0, annotations={du.REVISION: "1"})
    assert du.set_new_rs_annotations(d, r, "3", True)
    a = r["metadata"]["annotations"]
    assert a[du.REVISION] == "3" and a[du.REVISION_HISTORY] == "1"
    assert a["kubernetes.io/change-cause"] == "v2" and du.LAST_APPLIED not in a
    du.set_new_rs_annotations(d, r, "5", True)
    assert a[du.REVISION_HISTORY] == "1,3"
    fresh = rs("f", 0)
    du.set_new_rs_annotations(d, fresh, "1", False)
    assert fresh["metadata"]["annotations"][du.DESIRED_REPLICAS] == "10"
    assert fresh["metadata"]["annotations"][du.MAX_REPLICAS] == "13"


def test_proportional_fraction_uses_max_replicas_annotation():
    d = deploy(20)  # was 10 (+3 surge = 13), now 20 (+5 = 25)
    a = rs("a", 8, annotations={du.MAX_REPLICAS: "13"})
    assert du.rs_fraction(a, d) == round(8 * 25 / 13) - 8
    assert du.proportion(a, d, 12, 0) == min(du.rs_fraction(a, d), 12)
    assert du.rs_fraction(a, deploy(0)) == -8


def test_active_or_latest():
    old, new = rs("old", 0, created="2024-01-01T00:00:00Z"), rs("new", 0, created="2024-01-02T00:00:00Z")
    assert du.find_active_or_latest(new, [old]) is new
    assert du.find_active_or_latest(None, [old]) is old
    busy = rs("busy", 3)
    assert du.find_active_or_latest(new, [busy]) is busy
    assert du.find_active_or_latest(rs("n2", 1), [busy]) is None


def test_status_and_available_condition():
    d = deploy(4)
    new = rs("new", 3, available=3)
    new["status"]["readyReplicas"] = 3
    old = rs("old", 1, available=1)
    st = du.calculate_status([old, new], new, d)
    assert st["replicas"] == 4 and st["updatedReplicas"] == 3 and st["availableReplicas"] == 4
    assert "unavailableReplicas" not in st and st["observedGeneration"] == 1
    cond = du.get_condition(st, du.AVAILABLE)
    assert (cond["status"], cond["reason"], cond["message"]) == ("True", du.MIN_AVAILABLE, du.MSG_AVAILABLE)
    st2 = du.calculate_status([rs("x", 4, available=1)], None, d)
    assert du.get_condition(st2, du.AVAILABLE)["reason"] == du.MIN_UNAVAILABLE
    assert st2["unavailableReplicas"] == 3
    assert du.deployment_complete(d, st) is False
    assert du.deployment_complete(d, dict(st, updatedReplicas=4))


def test_set_condition_keeps_transition_time_for_same_status():
    st: dict = {}
    du.set_condition(st, du.new_condition(du.PROGRESSING, "True", du.NEW_RS_CREATED, "a", now=100))
    du.set_condition(st, du.new_condition(du.PROGRESSING, "True", du.RS_UPDATED, "b", now=200))
    c = du.get_condition(st, du.PROGRESSING)
    assert c["reason"] == du.RS_UPDATED and c["lastTransitionTime"] == "1970-01-01T00:01:40Z"
    assert c["lastUpdateTime"] == "1970-01-01T00:03:20Z"


def test_timed_out():
    d = deploy(progressDeadlineSeconds=600)
    st: dict = {}
    du.set_condition(st, du.new_condition(du.PROGRESSING, "True", du.RS_UPDATED, "x", now=1000))
    assert not du.deployment_timed_out(d, st, 1500)
    assert du.deployment_timed_out(d, st, 1601)


def _pod(name: str, *, node: str = "n1", phase: str = "Running", ready: bool = True, created: str = "2024-01-01T00:00:00Z",
         ready_at: str = "2024-01-01T00:00:10Z", restarts: int = 0, cost: str | None = None) -> dict:
    md: dict = {"name": name, "uid": name, "creationTimestamp": created}
    if cost is not None:
        md["annotations"] = {"controller.kubernetes.io/pod-deletion-cost": cost}
    return {"metadata": md, "spec": {"nodeName": node},
            "status": {"phase": phase, "containerStatuses": [{"restartCount": restarts}],
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                       "lastTransitionTime": ready_at}]}}


def test_pods_ranked_for_deletion_as_kube_does():
    now = 1_800_000_000.0
    pods = [
        _pod("old-ready", created="2020-01-01T00:00:00Z", ready_at="2020-01-01T00:00:10Z"),
        _pod("unassigned", node="", phase="Pending", ready=False),
        _pod("pending", phase="Pending", ready=False),
        _pod("unknown", phase="Unknown", ready=False),
        _pod("not-ready", ready=False),
        _pod("costly", created="2020-01-01T00:00:00Z", cost="100"),
        _pod("restarts", created="2020-01-01T00:00:00Z", ready_at="2020-01-01T00:00:10Z", restarts=5),
        _pod("new-ready", created="2027-01-01T00:00:00Z", ready_at="2027-01-01T00:00:10Z"),
    ]
    order = [p["metadata"]["name"] for p in deletion_order(pods, [], now)]
    assert order == ["unassigned", "pending", "unknown", "not-ready", "new-ready", "restarts", "old-ready", "costly"]


def test_pods_doubled_up_with_siblings_go_first():
    a, b = _pod("a", node="n1"), _pod("b", node="n2")
    related = [a, b, _pod("sib", node="n2")]
    assert [p["metadata"]["name"] for p in deletion_order([a, b], related, 1_800_000_000.0)] == ["b", "a"]


def test_rollout_status_progress_conditions_and_deadline():
    d = deploy(2, progressDeadlineSeconds=600)
    new = rs("web-new", 2, available=1)
    st = du.rollout_status(d, [new], new, 1000)
    c = du.get_condition(st, du.PROGRESSING)
    assert (c["reason"], c["message"]) == (du.RS_UPDATED, 'ReplicaSet "web-new" is progressing.')
    d["status"] = st
    assert du.stuck_recheck_after(d, st, 1100) == 500
    late = du.rollout_status(d, [new], new, 1601)
    c = du.get_condition(late, du.PROGRESSING)
    assert (c["status"], c["reason"], c["message"]) == ("False", du.TIMED_OUT,
                                                        'ReplicaSet "web-new" has timed out progressing.')
    done = du.rollout_status(d, [rs("web-new", 2, available=2)], rs("web-new", 2, available=2), 1700)
    c = du.get_condition(done, du.PROGRESSING)
    assert (c["reason"], c["message"]) == (du.NEW_RS_AVAILABLE, 'ReplicaSet "web-new" has successfully progressed.')
