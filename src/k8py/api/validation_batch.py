"""Validation of batch/v1 kinds (``pkg/apis/batch/validation``), including kube's cron parser.

:func:`parse_cron` follows ``github.com/robfig/cron/v3`` ``ParseStandard``
(5 fields, ranges, steps, lists, month/day names, ``@hourly``-style
descriptors, ``@every <duration>``, ``TZ=``/``CRON_TZ=`` prefixes) and raises
:class:`CronError` carrying the library's exact message.  The returned
:class:`CronSchedule` can compute next activation times (for the CronJob controller).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

from k8py.api.validation_common import (
    FIELD_IMMUTABLE_MSG, GoRepr, as_dict, as_int, as_list, as_str, duplicate, go_label_selector, go_map, go_quote,
    go_slice, invalid, is_dns1123_label, is_domain_prefixed_path, name_is_dns_subdomain, not_supported, required,
    selector_or_none, str_map, too_long_max_length, too_many, validate_label_selector, validate_nonnegative,
    validate_object_meta, validate_object_meta_update, validate_qualified_name,
)
from k8py.api.validation_pod import validate_pod_template_spec


# --- cron ------------------------------------------------------------------------------------------
class CronError(ValueError):
    """A schedule robfig/cron would reject; ``str(err)`` is the library's message."""


class _Bounds(NamedTuple):
    lo: int
    hi: int
    names: dict[str, int] | None


_MONTHS = _Bounds(1, 12, {n: i + 1 for i, n in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))})
_DOW = _Bounds(0, 6, {n: i for i, n in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))})
_FIELDS = (_Bounds(0, 59, None), _Bounds(0, 23, None), _Bounds(1, 31, None), _MONTHS, _DOW)
_STAR = 1 << 63
_INT_RE = re.compile(r"[+-]?[0-9]+\Z")


def _atoi(expr: str) -> int:
    if not _INT_RE.match(expr):
        raise CronError(f'failed to parse int from {expr}: strconv.Atoi: parsing {go_quote(expr)}: invalid syntax')
    v = int(expr)
    if not -(1 << 63) <= v < (1 << 63):
        raise CronError(f'failed to parse int from {expr}: strconv.Atoi: parsing {go_quote(expr)}: value out of range')
    if v < 0:
        raise CronError(f"negative number ({v}) not allowed: {expr}")
    return v


def _int_or_name(expr: str, names: dict[str, int] | None) -> int:
    if names is not None:
        hit = names.get(expr.lower())
        if hit is not None:
            return hit
    return _atoi(expr)


def _get_range(expr: str, b: _Bounds) -> int:
    range_and_step = expr.split("/")
    low_high = range_and_step[0].split("-")
    single = len(low_high) == 1
    extra = 0
    if low_high[0] in ("*", "?"):
        start, end = b.lo, b.hi
        extra = _STAR
    else:
        start = _int_or_name(low_high[0], b.names)
        if len(low_high) == 1:
            end = start
        elif len(low_high) == 2:
            end = _int_or_name(low_high[1], b.names)
        else:
            raise CronError(f"too many hyphens: {expr}")
    if len(range_and_step) == 1:
        step = 1
    elif len(range_and_step) == 2:
        step = _atoi(range_and_step[1])
        if single:
            end = b.hi
        if step > 1:
            extra = 0
    else:
        raise CronError(f"too many slashes: {expr}")
    if start < b.lo:
        raise CronError(f"beginning of range ({start}) below minimum ({b.lo}): {expr}")
    if end > b.hi:
        raise CronError(f"end of range ({end}) above maximum ({b.hi}): {expr}")
    if start > end:
        raise CronError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise CronError(f"step of range should be a positive number: {expr}")
    bits = 0
    for i in range(start, end + 1, step):
        bits |= 1 << i
    return bits | extra


def _get_field(field: str, b: _Bounds) -> int:
    bits = 0
    for expr in field.split(","):
        if expr:
            bits |= _get_range(expr, b)
    return bits


_DURATION_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 10 ** 9,
                   "m": 60 * 10 ** 9, "h": 3600 * 10 ** 9}
_DUR_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)([^0-9.]*)")


def parse_go_duration(s: str) -> int:
    """Go ``time.ParseDuration`` -> nanoseconds (raises CronError with Go's message)."""
    orig = s
    q = go_quote(orig)
    neg = False
    if s and s[0] in "+-":
        neg = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise CronError(f"time: invalid duration {q}")
    total = 0.0
    pos = 0
    while pos < len(s):
        m = _DUR_PART.match(s, pos)
        num, unit = m.group(1), m.group(2)
        if not num or num == ".":
            raise CronError(f"time: invalid duration {q}")
        if not unit:
            raise CronError(f"time: missing unit in duration {q}")
        if unit not in _DURATION_UNITS:
            raise CronError(f"time: unknown unit {go_quote(unit)} in duration {q}")
        total += float(num) * _DURATION_UNITS[unit]
        pos = m.end()
    return -int(total) if neg else int(total)


class CronSchedule:
    """A parsed schedule: bitsets per field, or a fixed ``every`` interval."""

    __slots__ = ("minute", "hour", "dom", "month", "dow", "every_ns", "tz")

    def __init__(self, fields: tuple[int, int, int, int, int] | None, every_ns: int = 0, tz: str | None = None):
        if fields is None:
            fields = (0, 0, 0, 0, 0)
        self.minute, self.hour, self.dom, self.month, self.dow = fields
        self.every_ns = every_ns
        self.tz = tz

    def _day_matches(self, t: datetime) -> bool:
        dom_match = bool(1 << t.day & self.dom)
        dow_match = bool(1 << ((t.weekday() + 1) % 7) & self.dow)
        if self.dom & _STAR or self.dow & _STAR:
            return dom_match and dow_match
        return dom_match or dow_match

    def next(self, after: datetime) -> datetime | None:
        """First activation strictly after ``after`` (aware datetime), as robfig's ``Next``."""
        if self.every_ns:
            secs = max(1, self.every_ns // 10 ** 9)
            return after.replace(microsecond=0) + timedelta(seconds=secs)
        if self.tz:
            try:
                from zoneinfo import ZoneInfo
                after = after.astimezone(ZoneInfo(self.tz))
            except Exception:  # noqa: BLE001 - bad zones are rejected by validation
                pass
        t = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = t.year + 5
        while t.year <= limit:
            if not (1 << t.month) & self.month:
                t = (t.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
                continue
            if not self._day_matches(t):
                t = t.replace(hour=0, minute=0) + timedelta(days=1)
                continue
            if not (1 << t.hour) & self.hour:
                t = t.replace(minute=0) + timedelta(hours=1)
                continue
            if not (1 << t.minute) & self.minute:
                t += timedelta(minutes=1)
                continue
            return t.astimezone(timezone.utc) if self.tz else t
        return None


def _all(b: _Bounds) -> int:
    bits = 0
    for i in range(b.lo, b.hi + 1):
        bits |= 1 << i
    return bits | _STAR


def _descriptor(spec: str, tz: str | None) -> CronSchedule:
    mi, ho, dm, mo, dw = _FIELDS
    if spec in ("@yearly", "@annually"):
        return CronSchedule((1, 1, 1 << 1, 1 << 1, _all(dw)), tz=tz)
    if spec == "@monthly":
        return CronSchedule((1, 1, 1 << 1, _all(mo), _all(dw)), tz=tz)
    if spec == "@weekly":
        return CronSchedule((1, 1, _all(dm), _all(mo), 1), tz=tz)
    if spec in ("@daily", "@midnight"):
        return CronSchedule((1, 1, _all(dm), _all(mo), _all(dw)), tz=tz)
    if spec == "@hourly":
        return CronSchedule((1, _all(ho), _all(dm), _all(mo), _all(dw)), tz=tz)
    every = "@every "
    if spec.startswith(every):
        try:
            ns = parse_go_duration(spec[len(every):])
        except CronError as e:
            raise CronError(f"failed to parse duration {spec}: {e}") from None
        return CronSchedule(None, every_ns=max(ns, 10 ** 9), tz=tz)
    raise CronError(f"unrecognized descriptor: {spec}")


def parse_cron(spec: str) -> CronSchedule:
    """robfig/cron v3 ``ParseStandard``."""
    if not spec:
        raise CronError("empty spec string")
    tz = None
    if spec.startswith("TZ=") or spec.startswith("CRON_TZ="):
        i = spec.find(" ")
        eq = spec.find("=")
        name = spec[eq + 1:i] if i >= 0 else spec[eq + 1:]
        if not _tz_exists(name):
            raise CronError(f"provided bad location {name}: unknown time zone {name}")
        tz = name
        spec = spec[i:].strip() if i >= 0 else ""
    if spec.startswith("@"):
        return _descriptor(spec, tz)
    fields = spec.split()
    if len(fields) != 5:
        raise CronError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
    bits = tuple(_get_field(f, b) for f, b in zip(fields, _FIELDS))
    return CronSchedule(bits, tz=tz)  # type: ignore[arg-type]


def _tz_exists(name: str) -> bool:
    if name in ("UTC", ""):
        return True
    if name == "Local":
        return True
    try:
        from zoneinfo import ZoneInfo
        ZoneInfo(name)
        return True
    except Exception:  # noqa: BLE001
        return False


_TZ_PART = re.compile(r"[A-Za-z.\-_0-9+]{1,14}\Z")


def _validate_time_zone(path: str, tz: object, errs: list) -> None:
    if tz is None:
        return
    tz = as_str(tz)
    if not tz:
        errs.append(invalid(path, "", "timeZone must be nil or non-empty string"))
        return
    for part in tz.split("/"):
        if part in (".", "..") or part.startswith("-") or not _TZ_PART.match(part):
            errs.append(invalid(path, tz, f"unknown time zone {tz}"))
            return
    if tz.lower() == "local":
        errs.append(invalid(path, tz, "timeZone must be an explicit time zone as defined in "
                                      "https://www.iana.org/time-zones"))
    if not _tz_exists(tz) or tz == "Local":
        if tz != "Local":
            errs.append(invalid(path, tz, f"unknown time zone {tz}"))


# --- Job -------------------------------------------------------------------------------------------
_POD_FAILURE_ACTIONS = ("Count", "FailIndex", "FailJob", "Ignore")


def _validate_job_spec_common(path: str, spec: dict, errs: list) -> None:
    """``validateJobSpec`` (shared by Job and CronJob's jobTemplate)."""
    for f in ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit", "ttlSecondsAfterFinished",
              "backoffLimitPerIndex"):
        if spec.get(f) is not None:
            validate_nonnegative(f"{path}.{f}", spec.get(f), errs)
    mfi = spec.get("maxFailedIndexes")
    blpi = spec.get("backoffLimitPerIndex")
    if mfi is not None:
        validate_nonnegative(f"{path}.maxFailedIndexes", mfi, errs)
        if blpi is None:
            errs.append(required(f"{path}.backoffLimitPerIndex", "when maxFailedIndexes is specified"))
    mb = spec.get("managedBy")
    if mb is not None:
        mb = as_str(mb)
        is_domain_prefixed_path(f"{path}.managedBy", mb, errs)
        if len(mb) > 63:
            errs.append(too_long_max_length(f"{path}.managedBy", mb, 63))
    cm = spec.get("completionMode")
    completions = spec.get("completions")
    parallelism = spec.get("parallelism")
    if cm is not None:
        if cm not in ("NonIndexed", "Indexed"):
            errs.append(not_supported(f"{path}.completionMode", cm, ("NonIndexed", "Indexed")))
        if cm == "Indexed":
            if completions is None:
                errs.append(required(f"{path}.completions", "when completion mode is Indexed"))
            if parallelism is not None and as_int(parallelism) > 100000:
                errs.append(invalid(f"{path}.parallelism", as_int(parallelism),
                                    "must be less than or equal to 100000 when completion mode is Indexed"))
            if completions is not None and mfi is not None and as_int(mfi) > as_int(completions):
                errs.append(invalid(f"{path}.maxFailedIndexes", as_int(mfi), "must be less than or equal to completions"))
            if mfi is not None and as_int(mfi) > 100000:
                errs.append(invalid(f"{path}.maxFailedIndexes", as_int(mfi), "must be less than or equal to 100000"))
    if cm is None or cm == "NonIndexed":
        if blpi is not None:
            errs.append(invalid(f"{path}.backoffLimitPerIndex", as_int(blpi), "requires indexed completion mode"))
        if mfi is not None:
            errs.append(invalid(f"{path}.maxFailedIndexes", as_int(mfi), "requires indexed completion mode"))
    pfp = spec.get("podFailurePolicy")
    if pfp is not None:
        rules = as_list(as_dict(pfp).get("rules"))
        rp = f"{path}.podFailurePolicy.rules"
        if len(rules) > 20:
            errs.append(too_many(rp, len(rules), 20))
        tspec = as_dict(as_dict(spec.get("template")).get("spec"))
        cnames = {as_str(as_dict(c).get("name")) for c in as_list(tspec.get("containers"))} | \
                 {as_str(as_dict(c).get("name")) for c in as_list(tspec.get("initContainers"))}
        for i, rule in enumerate(rules):
            _pod_failure_rule(f"{rp}[{i}]", as_dict(rule), blpi is not None, cnames, errs)
    sp = spec.get("successPolicy")
    if sp is not None and cm != "Indexed":
        errs.append(invalid(f"{path}.successPolicy", GoRepr("batch.SuccessPolicy{...}"), "requires indexed completion mode"))
    prp = spec.get("podReplacementPolicy")
    if prp is not None:
        if pfp is not None:
            if prp != "Failed":
                errs.append(not_supported(f"{path}.podReplacementPolicy", prp, ("Failed",)))
        elif prp not in ("Failed", "TerminatingOrFailed"):
            errs.append(not_supported(f"{path}.podReplacementPolicy", prp, ("Failed", "TerminatingOrFailed")))
    tmpl = as_dict(spec.get("template"))
    validate_pod_template_spec(f"{path}.template", tmpl, errs)
    rpol = as_str(as_dict(tmpl.get("spec")).get("restartPolicy"))
    rpath = f"{path}.template.spec.restartPolicy"
    if rpol in ("Always", ""):
        errs.append(required(rpath, 'valid values: "OnFailure", "Never"'))
    elif rpol not in ("OnFailure", "Never"):
        errs.append(not_supported(rpath, rpol, ("OnFailure", "Never")))
    elif pfp is not None and rpol != "Never":
        errs.append(invalid(rpath, rpol, 'only "Never" is supported when podFailurePolicy is specified'))


def _pod_failure_rule(path: str, rule: dict, has_blpi: bool, cnames: set, errs: list) -> None:
    action = as_str(rule.get("action"))
    ap = path + ".action"
    if not action:
        errs.append(required(ap, 'valid values: ["Count" "FailIndex" "FailJob" "Ignore"]'))
    elif action == "FailIndex":
        if not has_blpi:
            errs.append(invalid(ap, action, "requires the backoffLimitPerIndex to be set"))
    elif action not in _POD_FAILURE_ACTIONS:
        errs.append(not_supported(ap, action, _POD_FAILURE_ACTIONS))
    oec = rule.get("onExitCodes")
    opc = as_list(rule.get("onPodConditions"))
    if oec is not None:
        oec = as_dict(oec)
        op = as_str(oec.get("operator"))
        opp = path + ".onExitCodes.operator"
        if not op:
            errs.append(required(opp, 'valid values: ["In" "NotIn"]'))
        elif op not in ("In", "NotIn"):
            errs.append(not_supported(opp, op, ("In", "NotIn")))
        cn = oec.get("containerName")
        if cn is not None and (not isinstance(cn, str) or cn not in cnames):
            errs.append(invalid(path + ".onExitCodes.containerName", as_str(cn),
                                "must be one of the container or initContainer names in the pod template"))
        vals = as_list(oec.get("values"))
        vp = path + ".onExitCodes.values"
        if not vals:
            errs.append(invalid(vp, GoRepr(go_slice(vals, "[]int32") if vals else "[]int32(nil)"),
                                "at least one value is required"))
        elif len(vals) > 255:
            errs.append(too_many(vp, len(vals), 255))
        seen: set = set()
        ordered = True
        for j, v in enumerate(vals):
            v = as_int(v)
            if op == "In" and v == 0:
                errs.append(invalid(f"{vp}[{j}]", v, "must not be 0 for the In operator"))
            if v in seen:
                errs.append(duplicate(f"{vp}[{j}]", v))
            seen.add(v)
            if j > 0 and as_int(vals[j - 1]) > v:
                ordered = False
        if not ordered:
            errs.append(invalid(vp, GoRepr("[]int32{" + ", ".join(str(as_int(x)) for x in vals) + "}"),
                                "must be ordered"))
    for j, pat in enumerate(opc):
        pat = as_dict(pat)
        pp = f"{path}.onPodConditions[{j}]"
        validate_qualified_name(pp + ".type", as_str(pat.get("type")), errs)
        st = as_str(pat.get("status"))
        if not st:
            errs.append(required(pp + ".status", 'valid values: ["False" "True" "Unknown"]'))
        elif st not in ("False", "True", "Unknown"):
            errs.append(not_supported(pp + ".status", st, ("False", "True", "Unknown")))
    from k8py.api.validation_common import OMIT
    if oec is not None and opc:
        errs.append(invalid(path, OMIT, "specifying both OnExitCodes and OnPodConditions is not supported"))
    if oec is None and not opc:
        errs.append(invalid(path, OMIT, "specifying one of OnExitCodes and OnPodConditions is required"))


def _validate_job_spec(path: str, spec: dict, errs: list) -> None:
    """``ValidateJobSpec``: common checks + selector required & matching the template."""
    _validate_job_spec_common(path, spec, errs)
    sel = spec.get("selector")
    if sel is None:
        errs.append(required(f"{path}.selector"))
    else:
        validate_label_selector(f"{path}.selector", sel, errs)
    selector = selector_or_none(sel)
    if selector is not None:
        labels = as_dict(as_dict(spec.get("template")).get("metadata")).get("labels")
        if not selector.matches(str_map(labels) or {}):
            errs.append(invalid(f"{path}.template.metadata.labels",
                                GoRepr(go_map(labels if isinstance(labels, dict) else None, "map[string]string")),
                                "`selector` does not match template `labels`"))


def _has_label(tmeta: dict, key: str, expected: str, errs: list) -> None:
    labels = tmeta.get("labels")
    ld = as_dict(labels)
    if key not in ld:
        errs.append(required(f"spec.template.metadata.labels[{key}]", f"must be '{expected}'"))
    elif ld[key] != expected:
        errs.append(invalid(f"spec.template.metadata.labels[{key}]", GoRepr(go_map(ld, "map[string]string")),
                            f"must be '{expected}'"))


def _generated_selector(job: dict, errs: list) -> None:
    spec = as_dict(job.get("spec"))
    if spec.get("manualSelector") is True or spec.get("selector") is None:
        return
    meta = as_dict(job.get("metadata"))
    uid, name = as_str(meta.get("uid")), as_str(meta.get("name"))
    if not uid:
        errs.append(required("metadata.uid"))
    tmeta = as_dict(as_dict(spec.get("template")).get("metadata"))
    _has_label(tmeta, "controller-uid", uid, errs)
    _has_label(tmeta, "job-name", name, errs)
    _has_label(tmeta, "batch.kubernetes.io/controller-uid", uid, errs)
    _has_label(tmeta, "batch.kubernetes.io/job-name", name, errs)
    expected = {"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name,
                "controller-uid": uid, "job-name": name}
    selector = selector_or_none(spec.get("selector"))
    if selector is not None and not selector.matches(expected):
        errs.append(invalid("spec.selector", go_label_selector(as_dict(spec.get("selector"))),
                            "`selector` not auto-generated"))


def validate_job(obj: dict, old: dict | None, errs: list) -> None:
    spec = as_dict(obj.get("spec"))
    if old is None:
        meta = as_dict(obj.get("metadata"))
        validate_object_meta(meta, True, name_is_dns_subdomain, errs)
        _generated_selector(obj, errs)
        _validate_job_spec("spec", spec, errs)
        if spec.get("completionMode") == "Indexed" and as_int(spec.get("completions")) > 0:
            host = f"{as_str(meta.get('name'))}-{as_int(spec.get('completions')) - 1}"
            if is_dns1123_label(host):
                errs.append(invalid("metadata.name", as_str(meta.get("name")),
                                    f"will not able to create pod with invalid DNS label: {host}"))
        return
    validate_object_meta_update(obj.get("metadata"), old.get("metadata"), errs)
    ospec = as_dict(old.get("spec"))
    _validate_job_spec("spec", spec, errs)
    nc, oc = spec.get("completions"), ospec.get("completions")
    if nc != oc:
        if spec.get("completionMode") != "Indexed":
            errs.append(invalid("spec.completions", nc, FIELD_IMMUTABLE_MSG))
        elif nc is not None and nc != spec.get("parallelism"):
            errs.append(invalid("spec.completions", nc, "can only be modified in tandem with spec.parallelism"))
    if as_dict(spec.get("selector")) != as_dict(ospec.get("selector")):
        errs.append(invalid("spec.selector", go_label_selector(spec.get("selector")), FIELD_IMMUTABLE_MSG))
    nt, ot = as_dict(spec.get("template")), as_dict(ospec.get("template"))
    if nt != ot:
        suspended = ospec.get("suspend") is True and spec.get("suspend") is True and \
            not as_dict(old.get("status")).get("startTime")
        if suspended:
            nt2 = _strip_scheduling(nt)
            ot2 = _strip_scheduling(ot)
            changed = nt2 != ot2
        else:
            changed = True
        if changed:
            errs.append(invalid("spec.template", GoRepr("core.PodTemplateSpec{...}"), FIELD_IMMUTABLE_MSG))
    for f in ("completionMode", "podFailurePolicy", "backoffLimitPerIndex", "managedBy", "successPolicy"):
        if spec.get(f) != ospec.get(f):
            v = spec.get(f)
            errs.append(invalid(f"spec.{f}", v if not isinstance(v, (dict, list)) else GoRepr("{...}"),
                                FIELD_IMMUTABLE_MSG))


def _strip_scheduling(t: dict) -> dict:
    t = dict(t)
    meta = dict(as_dict(t.get("metadata")))
    meta.pop("labels", None)
    meta.pop("annotations", None)
    t["metadata"] = meta
    spec = dict(as_dict(t.get("spec")))
    for k in ("nodeSelector", "tolerations", "schedulingGates"):
        spec.pop(k, None)
    aff = dict(as_dict(spec.get("affinity")))
    aff.pop("nodeAffinity", None)
    if aff:
        spec["affinity"] = aff
    else:
        spec.pop("affinity", None)
    t["spec"] = spec
    return t


def validate_job_status(obj: dict, old: dict, errs: list) -> None:
    validate_object_meta_update(obj.get("metadata"), old.get("metadata"), errs)
    status = as_dict(obj.get("status"))
    for f in ("active", "succeeded", "failed", "ready", "terminating"):
        validate_nonnegative(f"status.{f}", status.get(f), errs)
    ostatus = as_dict(old.get("status"))
    if as_int(status.get("failed")) < as_int(ostatus.get("failed")):
        errs.append(invalid("status.failed", as_int(status.get("failed")), "cannot decrease the failed counter"))
    if as_int(status.get("succeeded")) < as_int(ostatus.get("succeeded")):
        errs.append(invalid("status.succeeded", as_int(status.get("succeeded")), "cannot decrease the succeeded counter"))


# --- CronJob ---------------------------------------------------------------------------------------
def validate_job_template_spec(path: str, tmpl: dict, errs: list) -> None:
    spec = as_dict(tmpl.get("spec"))
    _validate_job_spec_common(path + ".spec", spec, errs)
    if spec.get("selector") is not None:
        errs.append(invalid(path + ".spec.selector", go_label_selector(as_dict(spec.get("selector"))),
                            "`selector` will be auto-generated"))
    if spec.get("manualSelector") is True:
        errs.append(not_supported(path + ".spec.manualSelector", True, ("nil", "false")))


def validate_cronjob(obj: dict, old: dict | None, errs: list) -> None:
    meta = as_dict(obj.get("metadata"))
    spec = as_dict(obj.get("spec"))
    ospec = as_dict(old.get("spec")) if old is not None else None
    if old is None:
        validate_object_meta(meta, True, name_is_dns_subdomain, errs)
    else:
        validate_object_meta_update(meta, old.get("metadata"), errs)
    sched = as_str(spec.get("schedule"))
    if not sched:
        errs.append(required("spec.schedule"))
    else:
        try:
            parse_cron(sched)
        except CronError as e:
            errs.append(invalid("spec.schedule", sched, str(e)))
        allow_tz = ospec is not None and "TZ" in as_str(ospec.get("schedule"))
        if allow_tz and "TZ" in sched and spec.get("timeZone") is not None:
            errs.append(invalid("spec.schedule", sched, "cannot use both timeZone field and TZ or CRON_TZ in schedule"))
        elif not allow_tz and "TZ" in sched:
            errs.append(invalid("spec.schedule", sched, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"))
    if spec.get("startingDeadlineSeconds") is not None:
        validate_nonnegative("spec.startingDeadlineSeconds", spec.get("startingDeadlineSeconds"), errs)
    if ospec is None or ospec.get("timeZone") != spec.get("timeZone"):
        _validate_time_zone("spec.timeZone", spec.get("timeZone"), errs)
    cp = as_str(spec.get("concurrencyPolicy"))
    if not cp:
        errs.append(required("spec.concurrencyPolicy"))
    elif cp not in ("Allow", "Forbid", "Replace"):
        errs.append(not_supported("spec.concurrencyPolicy", cp, ("Allow", "Forbid", "Replace")))
    validate_job_template_spec("spec.jobTemplate", as_dict(spec.get("jobTemplate")), errs)
    for f in ("successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        if spec.get(f) is not None:
            validate_nonnegative(f"spec.{f}", spec.get(f), errs)
    if old is None and len(as_str(meta.get("name"))) > 52:
        errs.append(invalid("metadata.name", as_str(meta.get("name")), "must be no more than 52 characters"))


__all__ = [
    "CronError", "CronSchedule", "parse_cron", "parse_go_duration", "validate_cronjob", "validate_job",
    "validate_job_status", "validate_job_template_spec",
]
