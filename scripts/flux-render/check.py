#!/usr/bin/env python3
"""Checks examples/flux/ against a running flux-catalog; run through scripts/check-flux-examples.sh.

1. Every ResourceSetInputProvider and ResourceSet in the examples is valid for its CRD (schema
   with unknown fields refused, and the CRD's CEL rules), and there is one provider (type
   ExternalService, token from a Secret, a reconcile interval) and one ResourceSet for each
   per-cluster Flux endpoint.
2. For every cluster the service lists, every ResourceSet is rendered by flux-render (Flux
   Operator's template semantics) against the service's real responses, and every rendered
   object is valid: Flux kinds for their CRD, Kubernetes kinds for the Kubernetes schema
   (kubernetes-validate --strict). Objects Flux would drop without a word fail the check.
3. What each example promises holds for every input: the sources, HelmReleases, namespaces
   and RoleBindings carry what the service returned (see the expect_* functions).
4. A template naming a field the service does not return fails to render (missingkey=error).
5. The providers and ResourceSets shown in the documentation (--docs) are the examples' own.

Rendered objects are written to --out/<cluster>/<resourceset>.yaml for reading.
Prints one line per failure and ends with `N passed, M failed`; exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

import celpy
import jsonschema
import kubernetes_validate
import kubernetes_validate.utils as kv_utils
import yaml

# The Kubernetes versions built-in kinds are checked against, as scripts/chart/check_chart.py.
KUBE_VERSIONS = ["1.30", "1.37"]
ENDPOINTS = ("platform-components", "namespaces", "rolebindings")
FLUX_PATH = "/api/v2/flux/clusters/"
PROVIDER_API = "fluxcd.controlplane.io/v1"


class Checks:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def ok(self, what: str, condition: bool, detail: str = "") -> bool:
        if condition:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL {what}" + (f": {detail}" if detail else ""))
        return condition


def dig(obj: Any, *path: Any, default: Any = None) -> Any:
    for part in path:
        if isinstance(obj, dict) and part in obj:
            obj = obj[part]
        else:
            return default
    return obj


# --- validation ---------------------------------------------------------------------------

_original_schema_contents = kv_utils.schema_contents
# kubernetes-validate reads its (large) definitions file for every object; read each once.
kv_utils.schema_contents = functools.lru_cache(maxsize=None)(_original_schema_contents)


def strict_schema(schema: Any) -> Any:
    """A CRD schema that refuses unknown fields, as the API server's strict field validation
    does: `additionalProperties: false` wherever properties are listed and unknown fields
    are not preserved."""
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


def cel_substring(s: Any, start: Any, end: Any = None) -> Any:
    """Kubernetes' CEL strings library has substring; cel-python does not."""
    return celpy.celtypes.StringType(str(s)[int(start) :] if end is None else str(s)[int(start) : int(end)])


class Crds:
    def __init__(self, directory: Path):
        self.schemas: dict[tuple[str, str], Any] = {}
        for path in sorted(directory.glob("*.yaml")):
            crd = yaml.safe_load(path.read_text())
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                self.schemas[(f"{group}/{version['name']}", kind)] = version["schema"]["openAPIV3Schema"]
        self.cel = celpy.Environment()

    def errors(self, obj: dict) -> list[str] | None:
        """Why obj is not valid for its CRD; None when no CRD here defines its kind."""
        schema = self.schemas.get((obj.get("apiVersion"), obj.get("kind")))
        if schema is None:
            return None
        body = {k: v for k, v in obj.items() if k != "status"}
        found = [
            f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
            for e in sorted(jsonschema.Draft7Validator(strict_schema(schema)).iter_errors(body),
                            key=lambda e: list(map(str, e.absolute_path)))
        ]
        return found + self.rule_errors(schema, body, "")

    def rule_errors(self, schema: dict, value: Any, path: str) -> list[str]:
        """The CRD's x-kubernetes-validations (CEL) rules, wherever the object has a value."""
        found = []
        for rule in schema.get("x-kubernetes-validations", []):
            if "oldSelf" in rule["rule"]:
                continue  # transition rules compare with a previous version; there is none
            program = self.cel.program(self.cel.compile(rule["rule"]), functions={"substring": cel_substring})
            try:
                result = program.evaluate({"self": celpy.json_to_cel(value)})
            except Exception as e:  # an unsupported function is a failure, not a pass
                result = f"not evaluated: {e}"[:300]
            if result is not True and not (isinstance(result, celpy.celtypes.BoolType) and bool(result)):
                found.append(f"{path or '(root)'}: {rule.get('message') or rule['rule']} ({result})")
        if isinstance(value, dict):
            properties = schema.get("properties", {})
            extra = schema.get("additionalProperties")
            for key, item in value.items():
                sub = properties.get(key, extra if isinstance(extra, dict) else None)
                if sub:
                    found += self.rule_errors(sub, item, f"{path}/{key}")
        elif isinstance(value, list) and isinstance(schema.get("items"), dict):
            for i, item in enumerate(value):
                found += self.rule_errors(schema["items"], item, f"{path}/{i}")
        return found


def is_builtin(api_version: str) -> bool:
    group = api_version.split("/")[0] if "/" in api_version else ""
    return "." not in group or group.endswith(".k8s.io")


def validate(c: Checks, crds: Crds, obj: dict, label: str) -> None:
    api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
    if is_builtin(api_version):
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
                c.ok(f"{label} is valid for Kubernetes {version}", True)
            except Exception as e:
                c.ok(f"{label} is valid for Kubernetes {version}", False, str(e).splitlines()[0][:300])
        return
    errors = crds.errors(obj)
    if c.ok(f"{label}: a CRD for {api_version} {kind} is in the checked set", errors is not None):
        c.ok(f"{label} is valid for its CRD", not errors, "; ".join(errors or [])[:1000])


# --- the examples -------------------------------------------------------------------------


def load_examples(directory: Path) -> list[tuple[str, dict]]:
    docs = []
    for path in sorted(directory.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((path.name, doc))
    return docs


def endpoint_of(provider: dict) -> str | None:
    path = urlsplit(dig(provider, "spec", "url", default="")).path
    if not path.startswith(FLUX_PATH):
        return None
    parts = path[len(FLUX_PATH):].split("/")
    return parts[1] if len(parts) == 2 and parts[1] in ENDPOINTS else None


def check_manifests(c: Checks, crds: Crds, docs: list[tuple[str, dict]]) -> dict[str, tuple[dict, list[dict]]]:
    """Validates the example manifests; returns each endpoint's ResourceSet and providers."""
    providers: dict[str, dict] = {}
    resource_sets: list[tuple[str, dict]] = []
    for file, doc in docs:
        label = f"{file}: {doc.get('kind')} {dig(doc, 'metadata', 'name')}"
        validate(c, crds, doc, label)
        if doc.get("kind") == "ResourceSetInputProvider":
            providers[dig(doc, "metadata", "name")] = doc
            c.ok(f"{label} is of type ExternalService", dig(doc, "spec", "type") == "ExternalService")
            c.ok(f"{label} takes its token from a Secret", bool(dig(doc, "spec", "secretRef", "name")))
            c.ok(f"{label} sets a reconcile interval",
                 bool(dig(doc, "metadata", "annotations", "fluxcd.controlplane.io/reconcileEvery")))
            c.ok(f"{label} polls a per-cluster Flux endpoint", endpoint_of(doc) is not None, dig(doc, "spec", "url"))
        elif doc.get("kind") == "ResourceSet":
            resource_sets.append((label, doc))
        else:
            c.ok(f"{label}: only providers and ResourceSets in the examples", False)

    by_endpoint: dict[str, tuple[dict, list[dict]]] = {}
    for label, rset in resource_sets:
        refs = dig(rset, "spec", "inputsFrom", default=[])
        used = [providers.get(ref.get("name")) for ref in refs]
        if not c.ok(f"{label} takes its inputs from providers in the examples",
                    bool(used) and all(p is not None and p["metadata"]["namespace"] == rset["metadata"]["namespace"]
                                       for p in used) and all(r.get("kind") == "ResourceSetInputProvider" for r in refs)):
            continue
        c.ok(f"{label} renders one resourcesTemplate (no steps, no static resources)",
             "resourcesTemplate" in rset["spec"] and "steps" not in rset["spec"] and "resources" not in rset["spec"]
             and dig(rset, "spec", "inputStrategy", "name", default="Flatten") == "Flatten")
        endpoints = {endpoint_of(p) for p in used}
        if c.ok(f"{label} reads one endpoint", len(endpoints) == 1 and None not in endpoints, str(endpoints)):
            endpoint = endpoints.pop()
            c.ok(f"{label}: one ResourceSet for {endpoint}", endpoint not in by_endpoint)
            by_endpoint[endpoint] = (rset, used)
    for endpoint in ENDPOINTS:
        c.ok(f"the examples have a provider and a ResourceSet for {endpoint}", endpoint in by_endpoint)
    return by_endpoint


def check_docs(c: Checks, docs_file: Path, examples: list[tuple[str, dict]]) -> None:
    """Every provider or ResourceSet in a ```yaml block of docs_file equals the example of
    that kind and name, so the documentation cannot drift from what is checked."""
    by_name = {(d.get("kind"), dig(d, "metadata", "name")): d for _, d in examples}
    blocks = docs_file.read_text().split("```yaml\n")[1:]
    shown = 0
    for block in blocks:
        for doc in yaml.safe_load_all(block.split("```")[0]):
            if doc and doc.get("kind") in ("ResourceSet", "ResourceSetInputProvider"):
                shown += 1
                key = (doc["kind"], dig(doc, "metadata", "name"))
                c.ok(f"{docs_file}: {key[0]} {key[1]} is the one in the examples", by_name.get(key) == doc)
    c.ok(f"{docs_file} shows a provider and a ResourceSet", shown >= 2)


# --- rendering ----------------------------------------------------------------------------


class Service:
    def __init__(self, base: str, token: str):
        self.base, self.token = base.rstrip("/"), token

    def get(self, path: str) -> str:
        request = urllib.request.Request(self.base + path, headers={
            "Authorization": f"Bearer {self.token}", "Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.read().decode("utf-8")


def render(renderer: Path, template: str, providers: list[dict], bodies: list[str]) -> tuple[dict | None, str]:
    request = {"template": template, "providers": [
        {"apiVersion": p["apiVersion"], "kind": p["kind"], "name": p["metadata"]["name"],
         "namespace": p["metadata"]["namespace"], "limit": dig(p, "spec", "filter", "limit", default=0), "body": body}
        for p, body in zip(providers, bodies)]}
    done = subprocess.run([str(renderer)], input=json.dumps(request), capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        return None, done.stderr.strip()
    return json.loads(done.stdout), ""


def with_common_metadata(rset: dict, obj: dict) -> dict:
    """The ResourceSet controller sets spec.commonMetadata on every object it applies."""
    common = dig(rset, "spec", "commonMetadata", default={})
    for field in ("labels", "annotations"):
        if common.get(field):
            obj.setdefault("metadata", {}).setdefault(field, {}).update(common[field])
    return obj


# --- what each example promises -----------------------------------------------------------

Expectation = Callable[[Checks, str, list[dict], list[dict]], None]


def index(objects: list[dict]) -> dict[tuple[str, str], dict]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


def expect_platform_components(c: Checks, where: str, inputs: list[dict], objects: list[dict]) -> None:
    """Per enabled component an OCIRepository (oci:// URL) or HelmRepository and a HelmRelease
    with dependsOn = depends_on and values = patches; the environment suffix when
    cluster_env_enabled; nothing for a disabled one."""
    found = index(objects)
    enabled = [i for i in inputs if i["enabled"]]
    c.ok(f"{where}: two objects per enabled component, none for disabled ones",
         len(objects) == 2 * len(enabled) and all(o["metadata"]["name"] in {i["id"] for i in enabled} for o in objects),
         f"{len(objects)} objects for {len(enabled)} enabled components")
    for i in enabled:
        what = f"{where} {i['id']}"
        oci = i["source"]["oci_url"].startswith("oci://")
        url = i["source"]["oci_url"].rstrip("/") + (f"/{i['component_path']}" if oci else "")
        url += f"/{i['cluster']['environment']}" if i["cluster_env_enabled"] else ""
        source = found.get(("OCIRepository" if oci else "HelmRepository", i["id"]))
        release = found.get(("HelmRelease", i["id"]))
        if not c.ok(f"{what}: a source and a HelmRelease", source is not None and release is not None):
            continue
        c.ok(f"{what}: the source URL (environment suffix iff cluster_env_enabled)",
             dig(source, "spec", "url") == url, f"{dig(source, 'spec', 'url')} != {url}")
        if oci:
            c.ok(f"{what}: the OCI tag", dig(source, "spec", "ref", "tag") == i["source"]["oci_tag"])
            c.ok(f"{what}: the chart comes from the OCIRepository",
                 dig(release, "spec", "chartRef") == {"kind": "OCIRepository", "name": i["id"]})
        else:
            version = None if i["source"]["oci_tag"] == "latest" else i["source"]["oci_tag"]
            c.ok(f"{what}: the chart, its version and its HelmRepository",
                 dig(release, "spec", "chart", "spec") == {
                     "chart": i["component_path"], **({"version": version} if version else {}),
                     "sourceRef": {"kind": "HelmRepository", "name": i["id"]}},
                 json.dumps(dig(release, "spec", "chart")))
        c.ok(f"{what}: dependsOn is depends_on",
             [d["name"] for d in dig(release, "spec", "dependsOn", default=[])] == i["depends_on"])
        c.ok(f"{what}: values are the patches", dig(release, "spec", "values") == i["patches"],
             f"{dig(release, 'spec', 'values')} != {i['patches']}")


def expect_namespaces(c: Checks, where: str, inputs: list[dict], objects: list[dict]) -> None:
    """A Namespace per input with its labels and annotations, kept when dropped (prune: disabled)."""
    found = index(objects)
    c.ok(f"{where}: one Namespace per input", len(objects) == len(inputs))
    for i in inputs:
        ns = found.get(("Namespace", i["id"]))
        if c.ok(f"{where} {i['id']}: a Namespace", ns is not None):
            c.ok(f"{where} {i['id']}: its labels", dig(ns, "metadata", "labels") == i["labels"])
            c.ok(f"{where} {i['id']}: its annotations, and prune: disabled",
                 dig(ns, "metadata", "annotations") == {**i["annotations"], "fluxcd.controlplane.io/prune": "disabled"})


def expect_rolebindings(c: Checks, where: str, inputs: list[dict], objects: list[dict]) -> None:
    """A RoleBinding per input binding its ClusterRole to its subjects, empty fields left out."""
    found = index(objects)
    c.ok(f"{where}: one RoleBinding per input", len(objects) == len(inputs))
    for i in inputs:
        rb = found.get(("RoleBinding", i["id"]))
        if c.ok(f"{where} {i['id']}: a RoleBinding", rb is not None):
            c.ok(f"{where} {i['id']}: its role",
                 rb.get("roleRef") == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": i["role"]})
            subjects = [{k: v for k, v in s.items() if v != ""} for s in i["subjects"]]
            c.ok(f"{where} {i['id']}: its subjects", rb.get("subjects", []) == subjects,
                 f"{rb.get('subjects')} != {subjects}")


EXPECTATIONS: dict[str, Expectation] = {
    "platform-components": expect_platform_components,
    "namespaces": expect_namespaces,
    "rolebindings": expect_rolebindings,
}

# Typos the renderer must refuse, as Flux does: each names a field the service does not return.
TYPOS = [("inputs.id", "inputs.identifier"), ("$subject.apiGroup", "$subject.api_group")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="the running service, e.g. http://127.0.0.1:8080")
    parser.add_argument("--token", required=True, help="its read token")
    parser.add_argument("--renderer", required=True, type=Path)
    parser.add_argument("--examples", required=True, type=Path)
    parser.add_argument("--crds", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--docs", type=Path, action="append", default=[],
                        help="a Markdown file whose Flux manifests must be the examples' own")
    args = parser.parse_args()

    c = Checks()
    crds = Crds(args.crds)
    service = Service(args.base, args.token)
    examples = load_examples(args.examples)
    by_endpoint = check_manifests(c, crds, examples)
    for docs_file in args.docs:
        check_docs(c, docs_file, examples)

    clusters = [i["cluster_dns"] for i in json.loads(service.get("/api/v2/flux/clusters"))["inputs"]]
    c.ok("the service lists the demo clusters", len(clusters) >= 3, str(clusters))
    for endpoint, (rset, providers) in sorted(by_endpoint.items()):
        name = rset["metadata"]["name"]
        template = rset["spec"]["resourcesTemplate"]
        for dns in clusters:
            where = f"{name} for {dns}"
            bodies = [service.get(f"{FLUX_PATH}{dns}/{endpoint}") for _ in providers]
            result, error = render(args.renderer, template, providers, bodies)
            if not c.ok(f"{where} renders", result is not None, error):
                continue
            objects = [with_common_metadata(rset, o) for o in result["objects"]]
            c.ok(f"{where}: no document Flux would silently drop", not result["dropped"],
                 "\n".join(result["dropped"])[:1000])
            c.ok(f"{where}: no two objects with one name", not result["duplicates"], str(result["duplicates"]))
            for obj in objects:
                validate(c, crds, obj, f"{where}: {obj['kind']} {obj['metadata'].get('namespace', '')}/"
                                       f"{obj['metadata']['name']}")
            inputs = [i for body in bodies for i in json.loads(body)["inputs"]]
            EXPECTATIONS[endpoint](c, where, inputs, objects)
            out = args.out / dns / f"{name}.yaml"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(yaml.safe_dump_all(objects, sort_keys=False, explicit_start=True) if objects else "")

        # missingkey=error: a template naming a field the service does not return fails.
        dns = clusters[0]
        bodies = [service.get(f"{FLUX_PATH}{dns}/{endpoint}") for _ in providers]
        for field, typo in TYPOS:
            if field in template:
                result, error = render(args.renderer, copy.copy(template).replace(field, typo), providers, bodies)
                missing = typo.rsplit(".", 1)[1]
                c.ok(f"{name} with {typo} for {field} fails to render, as in Flux",
                     result is None and f'map has no entry for key "{missing}"' in error, error or "it rendered")

    print(f"{c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
