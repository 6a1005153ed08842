#!/usr/bin/env python3
"""Offline checks of the Helm chart (helm/flux-catalog); run through scripts/check-chart.sh.

Lints and renders the chart like `helm lint` / `helm template` (helm-python-sdk, Helm's own
engine), for the default values, every helm/flux-catalog/ci/*.yaml file and a few more
combinations; validates every rendered object (built-in kinds with kubernetes-validate --strict
against two Kubernetes versions, CloudNativePG's Cluster against its CRD's openAPIV3Schema
with jsonschema, unknown fields refused); asserts the properties the chart promises; and checks
that values which must not render do not.

Prints one line per failure and ends with `N passed, M failed`; exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import base64
import functools
import json
import re
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import helm_python as helm
import jsonschema
import kubernetes_validate
import kubernetes_validate.utils as kv_utils
import yaml

import values_doc

# Kubernetes versions the built-in kinds are validated against: the chart's minimum
# (Chart.yaml kubeVersion) and the newest kubernetes-validate knows.
KUBE_VERSIONS = ["1.30", "1.37"]
RELEASE = "catalog"
NAMESPACE = "platform"
# Settings the service reads from FLUX_CATALOG_* variables (src/settings.rs), plus the TLS
# ones being added (FLUX_CATALOG_DATABASE__SSL_MODE, FLUX_CATALOG_DATABASE__SSL_ROOT_CERT).
KNOWN_PREFIXED = {
    "FLUX_CATALOG_ENVIRONMENTS",
    "FLUX_CATALOG_DATABASE__POOL_SIZE",
    "FLUX_CATALOG_DATABASE__WAIT_TIMEOUT_MS",
    "FLUX_CATALOG_DATABASE__OPERATION_TIMEOUT_MS",
    "FLUX_CATALOG_DATABASE__MIGRATE_ON_START",
    "FLUX_CATALOG_DATABASE__EMBEDDED_DATA_DIR",
    "FLUX_CATALOG_DATABASE__EMBEDDED_BIN_DIR",
    "FLUX_CATALOG_DATABASE__SSL_MODE",
    "FLUX_CATALOG_DATABASE__SSL_ROOT_CERT",
    "FLUX_CATALOG_HTTP__MAX_BODY_BYTES",
    "FLUX_CATALOG_HTTP__WORKERS",
    "FLUX_CATALOG_HTTP__SHUTDOWN_TIMEOUT_SECS",
    "FLUX_CATALOG_SNAPSHOT__POLL_INTERVAL_MS",
    "FLUX_CATALOG_SNAPSHOT__CHECK_TIMEOUT_MS",
    "FLUX_CATALOG_FLUX__MAX_INPUTS",
    "FLUX_CATALOG_FLUX__MAX_RESPONSE_BYTES",
}
SECRET_ENV = {"AUTH_TOKEN", "CRUD_AUTH_TOKEN", "DATABASE_PASSWORD"}
STARTUP_BUDGET_SECONDS = 300


# ---------------------------------------------------------------------------------------------
# Bookkeeping


class Checks:
    def __init__(self) -> None:
        self.passed = 0
        self.failures: list[str] = []
        self.notes: list[str] = []
        self.scope = ""

    def ok(self, name: str, condition: object, detail: str = "") -> bool:
        if condition:
            self.passed += 1
            return True
        message = f"FAIL [{self.scope}] {name}" + (f": {detail}" if detail else "")
        self.failures.append(message)
        print(message, flush=True)
        return False

    def run(self, name: str, action: Callable[[], Any]) -> Any:
        """A check that passes when `action` raises nothing; returns its result."""
        try:
            result = action()
        except Exception as error:  # noqa: BLE001 - any failure is the check's failure
            self.ok(name, False, f"{type(error).__name__}: {error}")
            return None
        self.ok(name, True)
        return result

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


def dig(obj: Any, *path: Any, default: Any = None) -> Any:
    for part in path:
        if isinstance(obj, dict) and part in obj:
            obj = obj[part]
        elif isinstance(obj, list) and isinstance(part, int) and -len(obj) <= part < len(obj):
            obj = obj[part]
        else:
            return default
    return obj


def deep_merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def matches(selector: dict, labels: dict) -> bool:
    """A LabelSelector (matchLabels and matchExpressions) against labels."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return bool(selector.get("matchLabels") or selector.get("matchExpressions"))


def hooks(obj: dict) -> set[str]:
    value = dig(obj, "metadata", "annotations", "helm.sh/hook", default="")
    return {h.strip() for h in value.split(",") if h.strip()}


def hook_weight(obj: dict) -> int:
    return int(dig(obj, "metadata", "annotations", "helm.sh/hook-weight", default="0"))


# ---------------------------------------------------------------------------------------------
# Schemas


@functools.lru_cache(maxsize=None)
def _cached_schema_contents(filename: str, version: str) -> Any:
    return _original_schema_contents(filename, version)


_original_schema_contents = kv_utils.schema_contents
# kubernetes-validate reads its (large) definitions file for every object; read each once.
kv_utils.schema_contents = _cached_schema_contents


def strict_schema(schema: Any) -> Any:
    """A CRD schema that refuses unknown fields, as the API server's strict field validation
    does (it prunes them otherwise): `additionalProperties: false` wherever properties are
    listed and unknown fields are not preserved."""
    if isinstance(schema, list):
        return [strict_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict_schema(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


class CrdIndex:
    def __init__(self, directory: Path | None):
        self.directory = directory
        self.schemas: dict[tuple[str, str], Any] = {}
        if directory is None:
            return
        for path in sorted(directory.glob("*.yaml")):
            for doc in yaml.safe_load_all(path.read_text()):
                if not doc or doc.get("kind") != "CustomResourceDefinition":
                    continue
                group, kind = doc["spec"]["group"], doc["spec"]["names"]["kind"]
                for version in doc["spec"]["versions"]:
                    schema = dig(version, "schema", "openAPIV3Schema")
                    if schema:
                        self.schemas[(f"{group}/{version['name']}", kind)] = strict_schema(schema)

    def validator(self, api_version: str, kind: str) -> jsonschema.Draft7Validator | None:
        schema = self.schemas.get((api_version, kind))
        return None if schema is None else jsonschema.Draft7Validator(schema)


def is_builtin(api_version: str) -> bool:
    group = api_version.split("/")[0] if "/" in api_version else ""
    return "." not in group or group.endswith(".k8s.io")


# ---------------------------------------------------------------------------------------------
# Rendering


@dataclass
class Rendered:
    name: str
    values: dict  # effective (defaults merged with the scenario's)
    objects: list[dict] = field(default_factory=list)
    notes: str = ""
    image: str = ""  # the expected image reference
    current_pod: dict = field(default_factory=dict)  # the pod template being checked

    def of_kind(self, kind: str) -> list[dict]:
        return [o for o in self.objects if o.get("kind") == kind]

    def one(self, kind: str, component: str | None = None) -> dict | None:
        found = [
            o
            for o in self.of_kind(kind)
            if component is None or dig(o, "metadata", "labels", "app.kubernetes.io/component") == component
        ]
        return found[0] if len(found) == 1 else None

    def named(self, kind: str, name: str) -> dict | None:
        return next((o for o in self.of_kind(kind) if o["metadata"]["name"] == name), None)


def render(chart: helm.Chart, values: dict, *, upgrade: bool = False) -> tuple[list[dict], str]:
    manifests = chart.render(
        values, name=RELEASE, namespace=NAMESPACE, is_install=not upgrade, is_upgrade=upgrade
    )
    objects: list[dict] = []
    notes = ""
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            notes = text
            continue
        for doc in yaml.safe_load_all(text):
            if doc is not None:
                doc.setdefault("__source__", path)
                objects.append(doc)
    return objects, notes


def clean(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if k != "__source__"}


# ---------------------------------------------------------------------------------------------
# Expectations, computed from the values independently of the templates


def fullname(values: dict) -> str:
    if values.get("fullnameOverride"):
        return values["fullnameOverride"][:63].rstrip("-")
    name = values.get("nameOverride") or "flux-catalog"
    return (RELEASE if name in RELEASE else f"{RELEASE}-{name}")[:63].rstrip("-")


def chart_name(values: dict) -> str:
    return (values.get("nameOverride") or "flux-catalog")[:63].rstrip("-")


def expected_image(values: dict, app_version: str) -> str:
    image = values["image"]
    ref = f"{image['repository']}:{image.get('tag') or app_version}"
    return f"{ref}@{image['digest']}" if image.get("digest") else ref


def cnpg_cluster(values: dict) -> str:
    return values["database"]["cnpg"].get("clusterName") or f"{fullname(values)[:45].rstrip('-')}-db"


def secret_values(values: dict) -> list[str]:
    """Every secret a scenario passes as a value, and the passwords inside its URLs."""
    found = [
        values["auth"].get("readToken"),
        values["auth"].get("writeToken"),
        values["database"]["external"].get("url"),
        values["database"]["external"].get("readOnlyUrl"),
    ]
    for url in list(found[2:]):
        if url:
            m = re.search(r"://[^:/@]+:([^@]+)@", url)
            if m:
                found.append(m.group(1))
    return [s for s in found if s]


def expected_url_ref(values: dict, role: str) -> tuple[str, str]:
    ext = values["database"]["external"]
    db_secret = f"{fullname(values)}-database"
    if role == "read" and ext.get("readOnlyUrl"):
        return db_secret, "database-url-read-only"
    if role == "read" and (ext.get("readOnlyExistingSecret") or ext.get("readOnlyUrlKey")):
        return (ext.get("readOnlyExistingSecret") or ext["existingSecret"],
                ext.get("readOnlyUrlKey") or ext["urlKey"])
    if ext.get("url"):
        return db_secret, "database-url"
    return ext["existingSecret"], ext["urlKey"]


def expected_token_ref(values: dict, which: str) -> tuple[str, str]:
    auth = values["auth"]
    if which == "read":
        return ((f"{fullname(values)}-auth", "auth-token") if auth.get("readToken")
                else (auth["existingSecret"], auth["readTokenKey"]))
    return ((f"{fullname(values)}-auth", "crud-auth-token") if auth.get("writeToken")
            else (auth["existingSecret"], auth["writeTokenKey"]))


# ---------------------------------------------------------------------------------------------
# Checks of one rendered scenario


def env_of(container: dict) -> list[dict]:
    return container.get("env") or []


def env_map(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in env_of(container)}


def secret_ref(entry: dict | None) -> tuple[str, str] | None:
    ref = dig(entry or {}, "valueFrom", "secretKeyRef")
    return (ref["name"], ref["key"]) if ref else None


def check_objects_valid(c: Checks, r: Rendered, crds: CrdIndex) -> None:
    seen: set[tuple[str, str]] = set()
    for obj in r.objects:
        kind, name = obj.get("kind"), dig(obj, "metadata", "name")
        label = f"{kind}/{name}"
        c.ok(f"{label} has apiVersion, kind, metadata.name",
             obj.get("apiVersion") and kind and name, obj.get("__source__", ""))
        c.ok(f"{label} is unique", (kind, name) not in seen)
        seen.add((kind, name))
        c.ok(f"{label} is in the release namespace", dig(obj, "metadata", "namespace") == NAMESPACE)
        c.ok(f"{label} name is a DNS label", re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", name or ""),
             name)
        labels = dig(obj, "metadata", "labels", default={})
        c.ok(f"{label} has the standard labels",
             all(k in labels for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance",
                                       "app.kubernetes.io/managed-by", "helm.sh/chart")), labels)
        body = clean(obj)
        if is_builtin(obj["apiVersion"]):
            for version in KUBE_VERSIONS:
                c.run(f"{label} is valid for Kubernetes {version} (strict)",
                      lambda v=version: kubernetes_validate.validate(body, v, strict=True))
            continue
        validator = crds.validator(obj["apiVersion"], kind)
        if validator is not None:
            errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
            c.ok(f"{label} is valid for its CRD's openAPIV3Schema (unknown fields refused)", not errors,
                 "; ".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:5]))
        elif kind == "ServiceMonitor":
            c.note(f"ServiceMonitor: no CRD for {obj['apiVersion']} in {crds.directory}; its schema is "
                   "not validated, its required fields are checked")
            c.ok(f"{label} has spec.selector and spec.endpoints[].port",
                 isinstance(dig(obj, "spec", "selector"), dict)
                 and dig(obj, "spec", "endpoints")
                 and all(isinstance(e.get("port"), str) for e in obj["spec"]["endpoints"]))
        else:
            c.ok(f"{label}: a schema to validate it against", False,
                 f"no CRD for {obj['apiVersion']} {kind} in {crds.directory}")


def check_pod_template(c: Checks, r: Rendered, owner: str, pod: dict, sa_expected: str | None) -> None:
    spec = pod["spec"]
    psc = spec.get("securityContext") or {}
    c.ok(f"{owner}: pod runAsNonRoot", psc.get("runAsNonRoot") is True, psc)
    c.ok(f"{owner}: pod seccompProfile RuntimeDefault", dig(psc, "seccompProfile", "type") == "RuntimeDefault", psc)
    c.ok(f"{owner}: ServiceAccount token not mounted", spec.get("automountServiceAccountToken") is False)
    c.ok(f"{owner}: service links off (no FLUX_CATALOG_* variables from Services)",
         spec.get("enableServiceLinks") is False)
    if sa_expected is not None:
        c.ok(f"{owner}: serviceAccountName", spec.get("serviceAccountName") == sa_expected,
             f"{spec.get('serviceAccountName')} != {sa_expected}")
    c.ok(f"{owner}: imagePullSecrets", (spec.get("imagePullSecrets") or []) == (r.values["imagePullSecrets"] or []))
    for key in ("nodeSelector", "tolerations"):
        c.ok(f"{owner}: {key}", (spec.get(key) or type(r.values[key])()) == r.values[key], spec.get(key))
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    for container in spec.get("containers", []) + spec.get("initContainers", []):
        where = f"{owner}/{container['name']}"
        sc = container.get("securityContext") or {}
        c.ok(f"{where}: allowPrivilegeEscalation false", sc.get("allowPrivilegeEscalation") is False, sc)
        c.ok(f"{where}: readOnlyRootFilesystem", sc.get("readOnlyRootFilesystem") is True, sc)
        c.ok(f"{where}: capabilities drop ALL", "ALL" in (dig(sc, "capabilities", "drop") or []), sc)
        c.ok(f"{where}: no added capabilities", not dig(sc, "capabilities", "add"), sc)
        c.ok(f"{where}: not privileged", not sc.get("privileged"), sc)
        c.ok(f"{where}: runAsNonRoot", sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, sc)
        c.ok(f"{where}: seccompProfile RuntimeDefault",
             dig(sc, "seccompProfile", "type", default=dig(psc, "seccompProfile", "type")) == "RuntimeDefault")
        res = container.get("resources") or {}
        c.ok(f"{where}: cpu and memory requests and limits",
             all(dig(res, kind, what) for kind in ("requests", "limits") for what in ("cpu", "memory")), res)
        c.ok(f"{where}: image", container.get("image") == r.image, f"{container.get('image')} != {r.image}")
        c.ok(f"{where}: imagePullPolicy", container.get("imagePullPolicy") == r.values["image"]["pullPolicy"])
        check_env(c, r, where, container)
        mounts = {m["mountPath"]: m for m in container.get("volumeMounts") or []}
        c.ok(f"{where}: writable /tmp is an emptyDir",
             "/tmp" in mounts and "emptyDir" in volumes.get(mounts["/tmp"]["name"], {}))
        for mount in mounts.values():
            c.ok(f"{where}: mount {mount['name']} has a volume", mount["name"] in volumes)
            if "secret" in volumes.get(mount["name"], {}):
                c.ok(f"{where}: secret volume {mount['name']} is mounted read-only", mount.get("readOnly") is True)
        root_cert = dig(env_map(container), "FLUX_CATALOG_DATABASE__SSL_ROOT_CERT", "value")
        if root_cert:
            mount = next((m for p, m in mounts.items() if root_cert.startswith(p.rstrip("/") + "/")), None)
            volume = volumes.get(mount["name"]) if mount else None
            items = dig(volume or {}, "secret", "items", default=[])
            c.ok(f"{where}: SSL_ROOT_CERT {root_cert} is a file of a read-only Secret mount",
                 mount and mount.get("readOnly") and volume and "secret" in volume
                 and any(root_cert == f"{mount['mountPath'].rstrip('/')}/{i['path']}" for i in items),
                 f"mount={mount} volume={volume}")


def check_env(c: Checks, r: Rendered, where: str, container: dict) -> None:
    defined: dict[str, dict] = {}
    secrets = secret_values(r.values)
    for entry in env_of(container):
        name = entry["name"]
        if name in SECRET_ENV or re.search(r"(TOKEN|PASSWORD|SECRET)$", name):
            c.ok(f"{where}: {name} comes from a Secret", secret_ref(entry), entry)
        if name.startswith("FLUX_CATALOG_"):
            c.ok(f"{where}: {name} is a setting the service knows", name in KNOWN_PREFIXED)
        value = entry.get("value")
        if isinstance(value, str):
            c.ok(f"{where}: {name} holds no secret value", not any(s in value for s in secrets))
            c.ok(f"{where}: {name} has no password written into a URL",
                 not re.search(r"://[^/\s:@]+:(?!\$\()[^@\s]+@", value), value)
            for ref in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", value):
                c.ok(f"{where}: {name} references ${ref} defined before it", ref in defined)
            if name == "DATABASE_URL":
                password = re.search(r"password=('?)(\S*?)\1(\s|$)", value)
                c.ok(f"{where}: DATABASE_URL literal takes its password from a Secret-backed variable",
                     password and re.fullmatch(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", password.group(2))
                     and secret_ref(defined.get(password.group(2)[2:-1])), value)
        defined[name] = entry


def check_database_env(c: Checks, r: Rendered, where: str, container: dict, role: str) -> None:
    env = env_map(container)
    values = r.values
    if values["database"]["mode"] == "cnpg":
        cluster = cnpg_cluster(values)
        cnpg = values["database"]["cnpg"]
        service = "rw" if role == "write" else cnpg["readOnlyService"]
        c.ok(f"{where}: database user from {cluster}-app",
             secret_ref(env.get("DATABASE_USER")) == (f"{cluster}-app", "username"))
        c.ok(f"{where}: database password from {cluster}-app",
             secret_ref(env.get("DATABASE_PASSWORD")) == (f"{cluster}-app", "password"))
        url = dig(env, "DATABASE_URL", "value", default="")
        c.ok(f"{where}: DATABASE_URL on {cluster}-{service}",
             f"host={cluster}-{service}.{NAMESPACE}.svc " in url and "port=5432" in url
             and f"dbname={cnpg['database']}" in url, url)
        c.ok(f"{where}: no sslmode in the URL (the service's parser knows no verify-full)", "sslmode" not in url)
        c.ok(f"{where}: TLS verify-full", dig(env, "FLUX_CATALOG_DATABASE__SSL_MODE", "value") == "verify-full")
        c.ok(f"{where}: CA from {cluster}-ca (ca.crt only)",
             any(dig(v, "secret", "secretName") == f"{cluster}-ca"
                 and dig(v, "secret", "items") == [{"key": "ca.crt", "path": "ca.crt"}]
                 for v in r.current_pod["spec"].get("volumes") or []))
        c.ok(f"{where}: SSL_ROOT_CERT set", "FLUX_CATALOG_DATABASE__SSL_ROOT_CERT" in env)
        return
    ext = values["database"]["external"]
    c.ok(f"{where}: DATABASE_URL from the expected Secret key",
         secret_ref(env.get("DATABASE_URL")) == expected_url_ref(values, role),
         f"{secret_ref(env.get('DATABASE_URL'))} != {expected_url_ref(values, role)}")
    mode = ext["tls"].get("mode")
    c.ok(f"{where}: SSL_MODE follows database.external.tls.mode",
         dig(env, "FLUX_CATALOG_DATABASE__SSL_MODE", "value") == (mode or None))
    if ext["tls"].get("caSecret"):
        c.ok(f"{where}: CA from {ext['tls']['caSecret']}/{ext['tls']['caKey']}",
             any(dig(v, "secret", "secretName") == ext["tls"]["caSecret"]
                 and dig(v, "secret", "items") == [{"key": ext["tls"]["caKey"], "path": "ca.crt"}]
                 for v in r.current_pod["spec"].get("volumes") or []))
        c.ok(f"{where}: SSL_ROOT_CERT set", "FLUX_CATALOG_DATABASE__SSL_ROOT_CERT" in env)
    else:
        c.ok(f"{where}: no SSL_ROOT_CERT without a CA", "FLUX_CATALOG_DATABASE__SSL_ROOT_CERT" not in env)


COMPONENTS = [("readOnly", "read-only", "read-only", "read"), ("crud", "crud", "crud", "write")]


def check_deployments(c: Checks, r: Rendered) -> None:
    v = r.values
    sa = (v["serviceAccount"].get("name") or fullname(v)) if v["serviceAccount"]["create"] \
        else (v["serviceAccount"].get("name") or "default")
    shutdown = int(v["server"]["shutdownTimeoutSeconds"])
    pre_stop = int(v["server"]["preStopSleepSeconds"])
    deployments = r.of_kind("Deployment")
    c.ok("one Deployment per enabled component",
         len(deployments) == sum(1 for key, *_ in COMPONENTS if v[key]["enabled"]))
    for key, component, api_mode, role in COMPONENTS:
        dep = r.one("Deployment", component)
        if not v[key]["enabled"]:
            c.ok(f"no {component} Deployment when disabled", dep is None)
            continue
        if not c.ok(f"a {component} Deployment", dep is not None):
            continue
        where = f"Deployment/{dep['metadata']['name']}"
        pod = dep["spec"]["template"]
        r.current_pod = pod
        labels = dig(pod, "metadata", "labels", default={})
        c.ok(f"{where}: selector matches its pods", matches(dep["spec"]["selector"], labels))
        others = [d for d in deployments if d is not dep]
        c.ok(f"{where}: selector matches no other Deployment's pods",
             not any(matches(dep["spec"]["selector"], dig(o, "spec", "template", "metadata", "labels")) for o in others))
        hpa = key == "readOnly" and v[key]["autoscaling"]["enabled"]
        c.ok(f"{where}: replicas {'left to the HPA' if hpa else 'from values'}",
             ("replicas" not in dep["spec"]) if hpa else dep["spec"].get("replicas") == v[key]["replicaCount"])
        c.ok(f"{where}: pod labels include podLabels",
             all(labels.get(k) == val for k, val in (v["podLabels"] or {}).items()))
        annotations = dig(pod, "metadata", "annotations", default={})
        wanted = {**(v["podAnnotations"] or {}), **(v[key]["podAnnotations"] or {})}
        c.ok(f"{where}: pod annotations", all(annotations.get(k) == val for k, val in wanted.items()))
        spec = pod["spec"]
        grace = spec.get("terminationGracePeriodSeconds")
        c.ok(f"{where}: terminationGracePeriodSeconds {grace} > preStop {pre_stop}s + shutdown timeout {shutdown}s",
             isinstance(grace, int) and grace > shutdown + pre_stop)
        c.ok(f"{where}: priorityClassName", spec.get("priorityClassName") == (v["priorityClassName"] or None))
        c.ok(f"{where}: affinity", (spec.get("affinity") or {}) == (v[key]["affinity"] or v["affinity"] or {}))
        constraints = spec.get("topologySpreadConstraints") or []
        c.ok(f"{where}: one topology spread constraint per value",
             len(constraints) == len(v[key]["topologySpreadConstraints"] or []))
        for tsc in constraints:
            c.ok(f"{where}: topology spread on {tsc['topologyKey']} selects its pods",
                 matches(tsc.get("labelSelector") or {}, labels))
        check_pod_template(c, r, where, pod, sa)
        containers = spec["containers"]
        c.ok(f"{where}: one container", len(containers) == 1)
        ctr = containers[0]
        env = env_map(ctr)
        c.ok(f"{where}: args serve", ctr.get("args") == ["serve"])
        c.ok(f"{where}: API_MODE={api_mode}", dig(env, "API_MODE", "value") == api_mode)
        c.ok(f"{where}: MIGRATE_ON_START=false (the Job migrates)",
             dig(env, "FLUX_CATALOG_DATABASE__MIGRATE_ON_START", "value") == "false")
        c.ok(f"{where}: SHUTDOWN_TIMEOUT_SECS={shutdown}",
             dig(env, "FLUX_CATALOG_HTTP__SHUTDOWN_TIMEOUT_SECS", "value") == str(shutdown))
        c.ok(f"{where}: AUTH_TOKEN from the expected Secret key",
             secret_ref(env.get("AUTH_TOKEN")) == expected_token_ref(v, "read"))
        if api_mode == "crud":
            c.ok(f"{where}: CRUD_AUTH_TOKEN from the expected Secret key",
                 secret_ref(env.get("CRUD_AUTH_TOKEN")) == expected_token_ref(v, "write"))
        else:
            c.ok(f"{where}: no write token in the read-only Deployment", "CRUD_AUTH_TOKEN" not in env)
        for extra in (v["extraEnv"] or []) + (v[key]["extraEnv"] or []):
            c.ok(f"{where}: extraEnv {extra['name']}", extra in env_of(ctr))
        check_database_env(c, r, where, ctr, role)
        ports = {p["name"]: p["containerPort"] for p in ctr.get("ports") or []}
        c.ok(f"{where}: container port http = server.port", ports.get("http") == v["server"]["port"])
        c.ok(f"{where}: LISTEN_ADDR on the container port",
             dig(env, "LISTEN_ADDR", "value") == f"0.0.0.0:{v['server']['port']}")
        for probe, path in (("livenessProbe", "/health"), ("readinessProbe", "/ready"), ("startupProbe", "/health")):
            p = ctr.get(probe) or {}
            c.ok(f"{where}: {probe} on {path}", dig(p, "httpGet", "path") == path, p)
            c.ok(f"{where}: {probe} on the http port", dig(p, "httpGet", "port") in ("http", v["server"]["port"]))
        startup = ctr.get("startupProbe") or {}
        budget = startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3)
        c.ok(f"{where}: startupProbe allows {STARTUP_BUDGET_SECONDS}s", budget >= STARTUP_BUDGET_SECONDS, budget)
        sleep = dig(ctr, "lifecycle", "preStop", "sleep", "seconds")
        c.ok(f"{where}: preStop sleep {pre_stop}s", sleep == (pre_stop or None))
        c.ok(f"{where}: resources from values", ctr.get("resources") == v[key]["resources"])


def check_job(c: Checks, r: Rendered) -> None:
    v = r.values
    jobs = r.of_kind("Job")
    if not v["migrations"]["enabled"]:
        c.ok("no migration Job when migrations are off", not jobs)
        return
    if not c.ok("one migration Job", len(jobs) == 1):
        return
    job = jobs[0]
    where = f"Job/{job['metadata']['name']}"
    cnpg = v["database"]["mode"] == "cnpg"
    expected_hooks = {"post-install", "pre-upgrade"} if cnpg else {"pre-install", "pre-upgrade"}
    c.ok(f"{where}: is a {','.join(sorted(expected_hooks))} hook", hooks(job) == expected_hooks, hooks(job))
    policy = set(dig(job, "metadata", "annotations", "helm.sh/hook-delete-policy", default="").split(","))
    c.ok(f"{where}: hook-delete-policy before-hook-creation,hook-succeeded",
         {"before-hook-creation", "hook-succeeded"} <= policy, policy)
    c.ok(f"{where}: backoffLimit", job["spec"].get("backoffLimit") == v["migrations"]["backoffLimit"])
    c.ok(f"{where}: activeDeadlineSeconds",
         job["spec"].get("activeDeadlineSeconds") == v["migrations"]["activeDeadlineSeconds"])
    pod = job["spec"]["template"]
    r.current_pod = pod
    spec = pod["spec"]
    c.ok(f"{where}: restartPolicy Never", spec.get("restartPolicy") == "Never")
    check_pod_template(c, r, where, pod, None)
    ctr = spec["containers"][0]
    c.ok(f"{where}: args migrate", ctr.get("args") == ["migrate"])
    c.ok(f"{where}: resources from values", ctr.get("resources") == v["migrations"]["resources"])
    check_database_env(c, r, where, ctr, "write")
    c.ok(f"{where}: no API token (migrate needs none)",
         not {"AUTH_TOKEN", "CRUD_AUTH_TOKEN"} & set(env_map(ctr)))
    # What the Job's pod needs must exist when the hook runs.
    pre_install = "pre-install" in hooks(job)
    rendered_secrets = {s["metadata"]["name"]: s for s in r.of_kind("Secret")}
    needed = {name for e in env_of(ctr) if (ref := secret_ref(e)) for name in [ref[0]]}
    needed |= {dig(vol, "secret", "secretName") for vol in spec.get("volumes") or [] if "secret" in vol}
    for name in sorted(needed):
        secret = rendered_secrets.get(name)
        if secret is None:
            continue  # the user's, or CloudNativePG's: exists before the release
        if pre_install:
            c.ok(f"{where}: chart Secret {name} exists before the pre-install Job (a hook of lower weight)",
                 "pre-install" in hooks(secret) and "pre-upgrade" in hooks(secret)
                 and hook_weight(secret) < hook_weight(job), hooks(secret))
    sa = spec.get("serviceAccountName")
    chart_sas = {s["metadata"]["name"] for s in r.of_kind("ServiceAccount") if not hooks(s)}
    if pre_install:
        c.ok(f"{where}: its ServiceAccount {sa} is not created by the release after the hook",
             sa not in chart_sas)
    if v["migrations"].get("serviceAccountName"):
        c.ok(f"{where}: migrations.serviceAccountName", sa == v["migrations"]["serviceAccountName"])


def check_secrets(c: Checks, r: Rendered) -> None:
    v = r.values
    secrets = {s["metadata"]["name"]: s for s in r.of_kind("Secret")}
    expected: dict[str, dict[str, str]] = {}
    auth = {k: v["auth"][f] for k, f in (("auth-token", "readToken"), ("crud-auth-token", "writeToken"))
            if v["auth"].get(f)}
    if auth:
        expected[f"{fullname(v)}-auth"] = auth
    ext = v["database"]["external"]
    db = {k: ext[f] for k, f in (("database-url", "url"), ("database-url-read-only", "readOnlyUrl")) if ext.get(f)}
    if db and v["database"]["mode"] == "external":
        expected[f"{fullname(v)}-database"] = db
    c.ok("Secrets only for values passed explicitly", set(secrets) == set(expected),
         f"{sorted(secrets)} != {sorted(expected)}")
    for name, data in expected.items():
        secret = secrets.get(name)
        if not secret:
            continue
        decoded = {k: base64.b64decode(val).decode() for k, val in (secret.get("data") or {}).items()}
        decoded.update(secret.get("stringData") or {})
        c.ok(f"Secret/{name} holds the values passed", decoded == data)
    db_secret = secrets.get(f"{fullname(v)}-database")
    if db_secret and v["migrations"]["enabled"]:
        policy = dig(db_secret, "metadata", "annotations", "helm.sh/hook-delete-policy", default="")
        c.ok(f"Secret/{db_secret['metadata']['name']} is a pre-install,pre-upgrade hook kept for the Deployments",
             hooks(db_secret) == {"pre-install", "pre-upgrade"} and "hook-succeeded" not in policy
             and "before-hook-creation" in policy)
    auth_secret = secrets.get(f"{fullname(v)}-auth")
    if auth_secret:
        c.ok(f"Secret/{auth_secret['metadata']['name']} is an ordinary release object", not hooks(auth_secret))
    # No secret value anywhere but in Secrets, and never a ConfigMap.
    leaks = secret_values(v)
    for obj in r.objects:
        if obj["kind"] == "Secret":
            continue
        text = json.dumps(clean(obj))
        c.ok(f"{obj['kind']}/{obj['metadata']['name']} holds no secret value", not any(s in text for s in leaks))
    c.ok("NOTES.txt holds no secret value", not any(s in r.notes for s in leaks))
    c.ok("no ConfigMap carries settings a Secret should", all(
        not any(re.search(r"(TOKEN|PASSWORD|DATABASE_URL)", k, re.I) for k in (cm.get("data") or {}))
        for cm in r.of_kind("ConfigMap")))


def check_services(c: Checks, r: Rendered) -> None:
    v = r.values
    deployments = r.of_kind("Deployment")
    services = r.of_kind("Service")
    c.ok("one Service per Deployment", len(services) == len(deployments))
    for key, component, *_ in COMPONENTS:
        svc = r.one("Service", component)
        dep = r.one("Deployment", component)
        if not v[key]["enabled"]:
            c.ok(f"no {component} Service when disabled", svc is None)
            continue
        if not c.ok(f"a {component} Service", svc is not None and dep is not None):
            continue
        where = f"Service/{svc['metadata']['name']}"
        pod_labels = dig(dep, "spec", "template", "metadata", "labels")
        selected = [d for d in deployments
                    if matches({"matchLabels": svc["spec"]["selector"]}, dig(d, "spec", "template", "metadata", "labels"))]
        c.ok(f"{where}: selects exactly its Deployment's pods", selected == [dep] and bool(pod_labels))
        port = next((p for p in svc["spec"]["ports"] if p["name"] == "http"), None)
        c.ok(f"{where}: port http -> container port http",
             port and port["port"] == v[key]["service"]["port"] and port["targetPort"] == "http")
        c.ok(f"{where}: type", svc["spec"].get("type") == v[key]["service"]["type"])
        ingress = r.one("Ingress", component)
        if not v[key]["ingress"]["enabled"]:
            c.ok(f"no {component} Ingress unless enabled", ingress is None)
            continue
        if not c.ok(f"a {component} Ingress", ingress is not None):
            continue
        iw = f"Ingress/{ingress['metadata']['name']}"
        backends = [p["backend"]["service"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
        c.ok(f"{iw}: every path goes to {where} port http",
             backends and all(b == {"name": svc["metadata"]["name"], "port": {"name": "http"}} for b in backends))
        c.ok(f"{iw}: hosts from values",
             [rule["host"] for rule in ingress["spec"]["rules"]] == [h["host"] for h in v[key]["ingress"]["hosts"]])
        c.ok(f"{iw}: className", ingress["spec"].get("ingressClassName") == (v[key]["ingress"]["className"] or None))
        c.ok(f"{iw}: tls", (ingress["spec"].get("tls") or []) == (v[key]["ingress"]["tls"] or []))


def check_scaling(c: Checks, r: Rendered) -> None:
    v = r.values
    hpas = r.of_kind("HorizontalPodAutoscaler")
    auto = v["readOnly"]["enabled"] and v["readOnly"]["autoscaling"]["enabled"]
    c.ok("HPA only for the read-only Deployment with autoscaling on", len(hpas) == (1 if auto else 0))
    if auto and hpas:
        hpa, a = hpas[0], v["readOnly"]["autoscaling"]
        dep = r.one("Deployment", "read-only")
        c.ok("HPA targets the read-only Deployment",
             hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                               "name": dep["metadata"]["name"]})
        c.ok("HPA min/max", (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"])
             == (a["minReplicas"], a["maxReplicas"]))
        targets = {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"] for m in hpa["spec"]["metrics"]}
        wanted = {k: a[f] for k, f in (("cpu", "targetCPUUtilizationPercentage"),
                                      ("memory", "targetMemoryUtilizationPercentage")) if a.get(f) is not None}
        c.ok("HPA targets from values", targets == wanted, targets)
        c.ok("HPA behavior", (hpa["spec"].get("behavior") or {}) == (a.get("behavior") or {}))
    pdbs = r.of_kind("PodDisruptionBudget")
    for key, component, *_ in COMPONENTS:
        want = v[key]["enabled"] and v[key]["podDisruptionBudget"]["enabled"]
        pdb = r.one("PodDisruptionBudget", component)
        c.ok(f"{component} PodDisruptionBudget {'present' if want else 'absent'}", (pdb is not None) == want)
        if want and pdb:
            settings = v[key]["podDisruptionBudget"]
            selected = [d for d in r.of_kind("Deployment")
                        if matches(pdb["spec"]["selector"], dig(d, "spec", "template", "metadata", "labels"))]
            c.ok(f"{component} PodDisruptionBudget selects exactly its Deployment",
                 selected == [r.one("Deployment", component)])
            if settings.get("minAvailable") is not None:
                c.ok(f"{component} PodDisruptionBudget minAvailable",
                     pdb["spec"].get("minAvailable") == settings["minAvailable"] and "maxUnavailable" not in pdb["spec"])
            else:
                c.ok(f"{component} PodDisruptionBudget maxUnavailable",
                     pdb["spec"].get("maxUnavailable") == settings["maxUnavailable"])
    c.ok("no stray PodDisruptionBudget", len(pdbs) == sum(
        1 for key, *_ in COMPONENTS if v[key]["enabled"] and v[key]["podDisruptionBudget"]["enabled"]))


def check_extras(c: Checks, r: Rendered) -> None:
    v = r.values
    pods = [dig(o, "spec", "template", "metadata", "labels") for o in r.of_kind("Deployment") + r.of_kind("Job")]
    nps = r.of_kind("NetworkPolicy")
    c.ok("NetworkPolicy only when enabled", len(nps) == (1 if v["networkPolicy"]["enabled"] else 0))
    if nps:
        np = nps[0]
        c.ok("NetworkPolicy selects every pod of the release", all(matches(np["spec"]["podSelector"], p) for p in pods))
        rule = np["spec"]["ingress"][0]
        c.ok("NetworkPolicy admits the http port", {"port": "http", "protocol": "TCP"} in rule["ports"])
        c.ok("NetworkPolicy sources from values", rule.get("from", []) == v["networkPolicy"]["ingressFrom"])
        egress = v["networkPolicy"]["egress"]
        c.ok("NetworkPolicy egress only when enabled", ("Egress" in np["spec"]["policyTypes"]) == egress["enabled"])
        if egress["enabled"]:
            ports = [p["port"] for rule in np["spec"]["egress"] for p in rule.get("ports", [])]
            c.ok("NetworkPolicy egress allows DNS and PostgreSQL", 53 in ports and egress["databasePort"] in ports)
            if v["database"]["mode"] == "cnpg":
                c.ok("NetworkPolicy egress reaches the CloudNativePG pods", any(
                    dig(peer, "podSelector", "matchLabels", "cnpg.io/cluster") == cnpg_cluster(v)
                    for rule in np["spec"]["egress"] for peer in rule.get("to", [])))
    sms = r.of_kind("ServiceMonitor")
    c.ok("ServiceMonitor only when enabled", len(sms) == (1 if v["serviceMonitor"]["enabled"] else 0))
    if sms:
        sm = sms[0]
        c.ok("ServiceMonitor is monitoring.coreos.com/v1", sm["apiVersion"] == "monitoring.coreos.com/v1")
        services = r.of_kind("Service")
        c.ok("ServiceMonitor selects both Services",
             services and all(matches(sm["spec"]["selector"], s["metadata"]["labels"]) for s in services))
        endpoints = sm["spec"]["endpoints"]
        c.ok("ServiceMonitor scrapes /metrics on the http port",
             endpoints and all(e.get("path") == "/metrics" and e.get("port") == "http" for e in endpoints))
        c.ok("ServiceMonitor namespace", dig(sm, "spec", "namespaceSelector", "matchNames") == [NAMESPACE])
        for key, val in (v["serviceMonitor"]["labels"] or {}).items():
            c.ok(f"ServiceMonitor label {key}", sm["metadata"]["labels"].get(key) == val)
        creds = dig(endpoints, 0, "authorization", "credentials")
        if v["serviceMonitor"]["bearerToken"]:
            c.ok("ServiceMonitor sends the read token from its Secret",
                 creds and (creds["name"], creds["key"]) == expected_token_ref(v, "read"))
        else:
            c.ok("ServiceMonitor sends no token unless asked", creds is None)
    clusters = r.of_kind("Cluster")
    cnpg = v["database"]["mode"] == "cnpg"
    c.ok("CloudNativePG Cluster only in the cnpg mode", len(clusters) == (1 if cnpg else 0))
    if cnpg and clusters:
        cl, want = clusters[0], v["database"]["cnpg"]
        c.ok("Cluster is postgresql.cnpg.io/v1", cl["apiVersion"] == "postgresql.cnpg.io/v1")
        c.ok("Cluster name", cl["metadata"]["name"] == cnpg_cluster(v))
        c.ok("Cluster instances", cl["spec"]["instances"] == want["instances"])
        c.ok("Cluster storage", cl["spec"]["storage"].get("size") == want["storage"]["size"]
             and cl["spec"]["storage"].get("storageClass") == (want["storage"]["storageClass"] or None))
        c.ok("Cluster bootstrap initdb", dig(cl, "spec", "bootstrap", "initdb") ==
             {"database": want["database"], "owner": want["owner"]})
        c.ok("Cluster kept on uninstall as asked",
             (dig(cl, "metadata", "annotations", "helm.sh/resource-policy") == "keep") == bool(want["keepOnUninstall"]))
        c.ok("Cluster is no hook (it is the release's database)", not hooks(cl))
        if want["readOnlyService"] == "ro" and v["readOnly"]["enabled"]:
            c.ok("the -ro service has hot standbys (instances >= 2)", want["instances"] >= 2)
    sas = r.of_kind("ServiceAccount")
    c.ok("ServiceAccount only when created", len(sas) == (1 if v["serviceAccount"]["create"] else 0))
    for sa in sas:
        c.ok("ServiceAccount does not mount API tokens", sa.get("automountServiceAccountToken") is False
             or v["serviceAccount"]["automountServiceAccountToken"])
    c.ok("NOTES.txt renders", r.notes.strip() != "")
    known = {"Deployment", "Service", "Ingress", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Job",
             "Secret", "ServiceAccount", "NetworkPolicy", "ServiceMonitor", "Cluster"}
    c.ok("only the expected kinds", {o["kind"] for o in r.objects} <= known, {o["kind"] for o in r.objects})


def check_scenario(c: Checks, chart: helm.Chart, chart_dir: Path, name: str, values: dict,
                   crds: CrdIndex, app_version: str) -> None:
    c.scope = name
    report = c.run("helm lint (strict)", lambda: helm.lint(str(chart_dir), values, strict=True,
                                                           namespace=NAMESPACE))
    if report is not None:
        problems = report.get("errors", []) + [m["error"] for m in report.get("messages", []) if m["severity"] >= 2]
        c.ok("lint reports no warning or error", not problems, "; ".join(problems))
    effective = chart.merge_values(values)
    result = c.run("renders", lambda: render(chart, values))
    if result is None:
        return
    objects, notes = result
    r = Rendered(name, effective, objects, notes, expected_image(effective, app_version))
    upgrade = c.run("renders as an upgrade", lambda: render(chart, values, upgrade=True))
    if upgrade is not None:
        c.ok("an upgrade renders the same objects", [clean(o) for o in upgrade[0]] == [clean(o) for o in objects])
    check_objects_valid(c, r, crds)
    check_deployments(c, r)
    check_job(c, r)
    check_secrets(c, r)
    check_services(c, r)
    check_scaling(c, r)
    check_extras(c, r)
    print(f"ok   {name}: {len(objects)} objects", flush=True)


# ---------------------------------------------------------------------------------------------
# Scenarios

# Combinations beyond the ci/ files, each on top of the chart's defaults.
EXTRA_SCENARIOS: dict[str, dict] = {
    "external, read-only URL under its own Secret key, TLS require without CA, existing ServiceAccount": {
        "serviceAccount": {"create": False, "name": "platform-apps"},
        "database": {"external": {"existingSecret": "pg-app", "urlKey": "url",
                                  "readOnlyExistingSecret": "pg-standby", "readOnlyUrlKey": "url",
                                  "tls": {"mode": "require"}}},
        "server": {"preStopSleepSeconds": 0},
    },
    "external, URL as a value without migrations (the Secret is then no hook)": {
        "database": {"external": {"url": "postgres://u:scenario-pw-1@db:5432/c"}},
        "migrations": {"enabled": False},
    },
    "read-only Deployment only": {"crud": {"enabled": False}},
    "crud Deployment only": {"readOnly": {"enabled": False}},
    "cnpg, one instance, read-only on the -r service, chart ServiceAccount": {
        "database": {"mode": "cnpg", "cnpg": {"instances": 1, "readOnlyService": "r", "keepOnUninstall": False}},
        "serviceAccount": {"create": True},
    },
    "cnpg, tokens as values": {
        "database": {"mode": "cnpg"},
        "auth": {"readToken": "scenario-read-token-1", "writeToken": "scenario-write-token-2"},
    },
}

# Values that must be refused, with a fragment of the message.
MUST_FAIL: dict[str, tuple[dict, str]] = {
    "an unknown database mode": ({"database": {"mode": "sqlite"}}, "database.mode"),
    "cnpg with an external URL (exclusive options)": (
        {"database": {"mode": "cnpg", "external": {"url": "postgres://u:p@h/d"}}}, "exclusive"),
    "cnpg -ro service with one instance": (
        {"database": {"mode": "cnpg", "cnpg": {"instances": 1}}}, "instances >= 2"),
    "verify-full without a CA": ({"database": {"external": {"tls": {"mode": "verify-full"}}}}, "caSecret"),
    "an unknown TLS mode": ({"database": {"external": {"tls": {"mode": "allow"}}}}, "tls.mode"),
    "no Deployment at all": ({"readOnly": {"enabled": False}, "crud": {"enabled": False}}, "enable"),
    "no token source": ({"auth": {"existingSecret": ""}}, "auth.existingSecret"),
    "no database URL source": ({"database": {"external": {"existingSecret": ""}}}, "database.external"),
    "autoscaling without a target": (
        {"readOnly": {"autoscaling": {"enabled": True, "targetCPUUtilizationPercentage": None}}}, "target"),
}


def documented_scenarios(c: Checks, repo: Path, chart_dir: Path) -> list[tuple[str, dict]]:
    """The values the docs tell users to install with: each `values-*.yaml` block of
    docs/install.md, and the `--set`s of each `helm install|upgrade ... ./helm/flux-catalog`
    command in it and in the chart's README (with its `-f values-*.yaml`, when given)."""
    c.scope = "docs"
    found: list[tuple[str, dict]] = []
    files: dict[str, dict] = {}
    install = repo / "docs" / "install.md"
    for doc in (install, chart_dir / "README.md"):
        if not doc.is_file():
            continue
        text = doc.read_text()
        rel = doc.relative_to(repo)
        for m in re.finditer(r"`(values-[a-z0-9-]+\.yaml)`:\s*\n+```yaml\n(.*?)```", text, re.S):
            files[m.group(1)] = c.run(f"{rel}: {m.group(1)} parses", lambda b=m.group(2): yaml.safe_load(b)) or {}
            found.append((f"{rel}: {m.group(1)}", files[m.group(1)]))
        for block in re.findall(r"```sh\n(.*?)```", text, re.S):
            for command in block.replace("\\\n", " ").splitlines():
                if not re.match(r"\s*helm (install|upgrade) .*\./helm/flux-catalog", command):
                    continue
                values: dict = {}
                for f in re.findall(r"-f (values-[a-z0-9-]+\.yaml)", command):
                    c.ok(f"{rel}: {f} is shown before it is used", f in files)
                    values = deep_merge(values, files.get(f, {}))
                for expr in re.findall(r"--set (\S+)", command):
                    values = deep_merge(values, helm.parse_set_string(expr))
                if dig(values, "database", "mode") == "cnpg" and " install " in command:
                    c.ok(f"{rel}: a first cnpg install has no --wait/--atomic (the post-install Job would "
                         "wait for pods that wait for it)", not re.search(r"--(wait|atomic)\b", command), command)
                found.append((f"{rel}: {' '.join(command.split())[:110]}", values))
    c.ok("docs/install.md shows a values file for each database mode",
         {dig(v, "database", "mode") for k, v in found if "values-" in k and "install.md" in k} >= {"external", "cnpg"})
    return found


def static_checks(c: Checks, repo: Path, chart_dir: Path) -> str:
    c.scope = "chart files"
    meta = yaml.safe_load((chart_dir / "Chart.yaml").read_text())
    cargo = tomllib.loads((repo / "Cargo.toml").read_text())
    version = cargo["package"]["version"]
    c.ok("Chart.yaml apiVersion v2", meta.get("apiVersion") == "v2")
    c.ok("Chart.yaml version 0.1.0", meta.get("version") == "0.1.0")
    c.ok(f"Chart.yaml appVersion = Cargo.toml version {version}", meta.get("appVersion") == version,
         meta.get("appVersion"))
    for f in ("values.yaml", "README.md", "templates/_helpers.tpl", "templates/NOTES.txt"):
        c.ok(f"{f} exists", (chart_dir / f).is_file())
    c.ok("at least two ci/*.yaml files (external and cnpg modes)", len(list((chart_dir / "ci").glob("*.yaml"))) >= 2)
    values, undocumented = values_doc.parse(chart_dir / "values.yaml")
    c.ok("every value in values.yaml is documented (# -- comment)", not undocumented, ", ".join(undocumented))
    c.ok("the README's values table is current (scripts/chart/values_doc.py --write)",
         values_doc.readme_table(chart_dir / "README.md") == values_doc.table(values))
    readme = (chart_dir / "README.md").read_text()
    c.ok("the chart README shows helm install", "helm install" in readme)
    license_text = (repo / "LICENSE").read_text() if (repo / "LICENSE").is_file() else ""
    c.ok("LICENSE is the Apache License 2.0, as Cargo.toml says",
         cargo["package"].get("license") == "Apache-2.0" and "Apache License" in license_text
         and "Version 2.0, January 2004" in license_text and "END OF TERMS AND CONDITIONS" in license_text)
    dockerfile = (repo / "Dockerfile").read_text() if (repo / "Dockerfile").is_file() else ""
    c.ok("Dockerfile builds on the official Rust image (bookworm)",
         re.search(r"^FROM (docker\.io/(library/)?)?rust:1\.(\d+)[^\s]*-bookworm AS build", dockerfile, re.M | re.I))
    m = re.search(r"^FROM (?:docker\.io/(?:library/)?)?rust:1\.(\d+)", dockerfile, re.M)
    c.ok("Dockerfile's Rust is at least Cargo.toml's rust-version",
         m and int(m.group(1)) >= int(cargo["package"]["rust-version"].split(".")[1]))
    c.ok("Dockerfile builds with scripts/build-release.sh", "scripts/build-release.sh" in dockerfile)
    c.ok("Dockerfile runs distroless as non-root", re.search(r"^FROM gcr\.io/distroless/cc-debian12:nonroot", dockerfile, re.M)
         and re.search(r"^USER 65532", dockerfile, re.M))
    c.ok("Dockerfile entrypoint, command and port", '["/flux-catalog"]' in dockerfile and 'CMD ["serve"]' in dockerfile
         and re.search(r"^EXPOSE 8080", dockerfile, re.M))
    defaults = yaml.safe_load((chart_dir / "values.yaml").read_text())
    install_doc = (repo / "docs" / "install.md").read_text() if (repo / "docs" / "install.md").is_file() else ""
    c.ok("docs/install.md builds the chart's default image", defaults["image"]["repository"] in install_doc)
    c.ok(".dockerignore leaves out target/ and .git",
         (repo / ".dockerignore").is_file()
         and {"target", ".git"} <= {l.strip().strip("/") for l in (repo / ".dockerignore").read_text().splitlines()})
    return version


def main() -> int:
    repo = Path(__file__).resolve().parents[2]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chart", type=Path, default=repo / "helm" / "flux-catalog")
    parser.add_argument("--crds", type=Path, default=repo / "scripts" / "crds",
                        help="directory of CustomResourceDefinitions (default: ../shared/reference/crds)")
    args = parser.parse_args()
    started = time.monotonic()
    c = Checks()
    if not args.crds.is_dir():
        print(f"FAIL: no CRD directory {args.crds} (the CloudNativePG Cluster is validated against its CRD)")
        print("0 passed, 1 failed")
        return 1
    crds = CrdIndex(args.crds)
    c.scope = "CRDs"
    c.ok(f"the CloudNativePG Cluster CRD is in {args.crds}", ("postgresql.cnpg.io/v1", "Cluster") in crds.schemas)
    app_version = static_checks(c, repo, args.chart)
    chart = helm.Chart.load(str(args.chart))
    scenarios: list[tuple[str, dict]] = [("default values", {})]
    for path in sorted((args.chart / "ci").glob("*.yaml")):
        scenarios.append((f"ci/{path.name}", yaml.safe_load(path.read_text()) or {}))
    scenarios += list(EXTRA_SCENARIOS.items())
    scenarios += documented_scenarios(c, repo, args.chart)
    modes = set()
    for name, values in scenarios:
        check_scenario(c, chart, args.chart, name, values, crds, app_version)
        modes.add(chart.merge_values(values)["database"]["mode"])
    c.scope = "coverage"
    c.ok("both database modes rendered (external and cnpg)", modes == {"external", "cnpg"}, modes)
    for name, (values, fragment) in MUST_FAIL.items():
        c.scope = f"refused: {name}"
        try:
            render(chart, values)
        except helm.HelmError as error:
            c.ok(f"refused with a message naming {fragment!r}", fragment in str(error), str(error))
        else:
            c.ok("refused", False, "it rendered")
    print("ok   refused values:", len(MUST_FAIL), flush=True)
    for note in c.notes:
        print(f"note: {note}")
    print(f"chart checks took {time.monotonic() - started:.1f}s")
    print(f"{c.passed} passed, {len(c.failures)} failed")
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main())
