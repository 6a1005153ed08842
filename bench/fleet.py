#!/usr/bin/env python3
"""Benchmark datasets for flux-catalog, and the measurements that need more than wrk.

Standard library only. Every subcommand talks to servers through the public HTTP API, so a
dataset can be loaded into (and measured on) any implementation of the contract.

  fleet.py generate --size M > dataset.json      # fleet-M: 1,000 clusters; fleet-L: 10,000
  fleet.py load dataset.json --url URL --token T  # through POST /namespaces ... /clusters
  fleet.py paths dataset.json > paths.txt         # the URL paths wrk picks from
  fleet.py export dataset.json --url URL --token T --root DIR   # identical bodies for nginx
  fleet.py propagation dataset.json --writer URL --reader URL --token T [--rounds N]
  fleet.py ready --url URL --timeout S            # seconds until /ready answers 200
"""

import argparse
import http.client
import json
import os
import random
import sys
import threading
import time
import urllib.parse

SIZES = {"M": 1_000, "L": 10_000}
ENVIRONMENTS = ["dev", "qa", "uat", "prod"]
GROUP = 5  # components form dependency chains of five: each depends on the one before


def generate(clusters, components=200, refs=50, namespaces=40, rolebindings=20,
             namespaces_per_cluster=10, rolebindings_per_cluster=5,
             override_share=0.2, patch_share=0.3, patch_keys=5, seed=20261123):
    """A fleet of the requested size; the same arguments always give the same dataset.

    Components come in dependency chains of five (k depends on k-1 within a chain) and each
    cluster takes whole chains, so no cluster lacks a dependency. Chain 0 is on every
    cluster: a change to component-000 changes the inputs of the whole fleet.
    """
    rng = random.Random(seed)
    catalog = []
    for k in range(components):
        depends_on = [f"component-{k - 1:03d}"] if k % GROUP else []
        catalog.append({
            "id": f"component-{k:03d}",
            "component_path": f"charts/component-{k:03d}",
            "component_version": f"{1 + k % 7}.{k % 13}.{k % 5}",
            "cluster_env_enabled": k % 4 == 0,
            "oci_url": f"oci://registry.example.com/platform/charts/component-{k:03d}",
            "oci_tag": f"{1 + k % 7}.{k % 13}.{k % 5}",
            "depends_on": depends_on,
        })
    namespace_defs = [{
        "id": f"namespace-{n:02d}",
        "labels": {"app.kubernetes.io/part-of": "platform", "example.com/team": f"team-{n % 8}"},
        "annotations": {"example.com/owner": f"team-{n % 8}@example.com"},
    } for n in range(namespaces)]
    rolebinding_defs = [{
        "id": f"rolebinding-{r:02d}",
        "role": ["view", "edit", "admin", "cluster-admin"][r % 4],
        "subjects": [{"kind": "Group", "name": f"group-{r}", "apiGroup": "rbac.authorization.k8s.io"}],
    } for r in range(rolebindings)]

    groups = components // GROUP
    chains_per_cluster = refs // GROUP
    fleet = []
    for c in range(clusters):
        chosen = [0] + rng.sample(range(1, groups), chains_per_cluster - 1)
        platform_components, patches = [], {}
        for g in sorted(chosen):
            for k in range(g * GROUP, g * GROUP + GROUP):
                reference = {"id": f"component-{k:03d}", "enabled": True}
                if rng.random() < override_share:
                    reference["oci_tag"] = f"{2 + k % 7}.0.{c % 10}"
                platform_components.append(reference)
                if rng.random() < patch_share:
                    patches[f"component-{k:03d}"] = {
                        f"key{j}": value for j, value in zip(range(patch_keys), [
                            c % 5 + 1, f"v{k}.{c}", c % 2 == 0,
                            {"limits": {"memory": f"{128 * (1 + k % 4)}Mi"}},
                            ["a", k, c % 3]])
                    }
        name = f"cluster-{c:05d}"
        fleet.append({
            "id": name,
            "cluster_name": name,
            "cluster_dns": f"{name}.fleet.example.com",
            "environment": ENVIRONMENTS[c % len(ENVIRONMENTS)],
            "node_count": 3 + c % 20,
            "vm_image": "ubuntu-24.04-k0s",
            "k0s_version": "v1.31.2+k0s.0",
            "platform_components": platform_components,
            "namespaces": [{"id": n["id"]} for n in rng.sample(namespace_defs, namespaces_per_cluster)],
            "rolebindings": [{"id": r["id"]} for r in rng.sample(rolebinding_defs, rolebindings_per_cluster)],
            "patches": patches,
        })
    return {"platform_components": catalog, "namespaces": namespace_defs,
            "rolebindings": rolebinding_defs, "clusters": fleet}


class Client:
    """One keep-alive HTTP connection."""

    def __init__(self, url, token):
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname, parts.port or 80
        self.token = token
        self.last_etag = None
        self.connection = http.client.HTTPConnection(self.host, self.port, timeout=60)

    def request(self, method, path, body=None, headers=None):
        all_headers = {"Authorization": f"Bearer {self.token}"}
        if body is not None:
            all_headers["Content-Type"] = "application/json"
            body = json.dumps(body)
        all_headers.update(headers or {})
        for attempt in range(3):
            try:
                self.connection.request(method, path, body=body, headers=all_headers)
                response = self.connection.getresponse()
                self.last_etag = response.getheader("ETag")
                return response.status, response.read()
            except (http.client.HTTPException, ConnectionError):
                self.connection.close()
                self.connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
                if attempt == 2:
                    raise


def load(dataset, url, token, threads=8):
    """POSTs the dataset: definitions and components in order, clusters in parallel."""
    started = time.monotonic()
    client = Client(url, token)
    for collection in ["namespaces", "rolebindings", "platform_components"]:
        for resource in dataset[collection]:
            status, body = client.request("POST", f"/{collection}", resource)
            if status not in (201, 409):
                sys.exit(f"POST /{collection} {resource['id']}: {status} {body[:300]!r}")
    clusters = list(dataset["clusters"])
    lock = threading.Lock()
    failures = []

    def worker():
        own = Client(url, token)
        while True:
            with lock:
                if not clusters or failures:
                    return
                cluster = clusters.pop()
            status, body = own.request("POST", "/clusters", cluster)
            if status not in (201, 409):
                with lock:
                    failures.append(f"POST /clusters {cluster['id']}: {status} {body[:300]!r}")

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if failures:
        sys.exit(failures[0])
    return time.monotonic() - started


def paths(dataset):
    return [f"/api/v2/flux/clusters/{c['cluster_dns']}/platform-components" for c in dataset["clusters"]]


def export(dataset, url, token, root):
    """Writes each cluster's platform-components body, as the server sends it, to the same
    path under `root` for nginx to serve as static files, with its gzip encoding beside it
    (`.gz`, for nginx's gzip_static). Returns the average sizes of both."""
    client = Client(url, token)
    plain = compressed = 0
    for path in paths(dataset):
        target = os.path.join(root, path.lstrip("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        for suffix, headers in [("", {}), (".gz", {"Accept-Encoding": "gzip"})]:
            status, body = client.request("GET", path, headers=headers)
            if status != 200:
                sys.exit(f"GET {path}: {status}")
            with open(target + suffix, "wb") as f:
                f.write(body)
            if suffix:
                compressed += len(body)
            else:
                plain += len(body)
    count = len(dataset["clusters"])
    return plain / count, compressed / count


class Poller:
    """Follows one cluster's platform-components on a replica with conditional GETs: 304
    while its ETag holds, the body once it changes."""

    def __init__(self, client, cluster):
        self.client = client
        self.path = f"/api/v2/flux/clusters/{cluster['cluster_dns']}/platform-components"
        status, _ = self.client.request("GET", self.path)
        if status != 200:
            raise SystemExit(f"reader answered {status} for {self.path}")
        self.etag = self.client.last_etag

    def shows(self, marker):
        status, body = self.client.request("GET", self.path, headers={"If-None-Match": self.etag})
        if status == 304:
            return False
        if status != 200:
            raise SystemExit(f"reader answered {status} for {self.path}")
        self.etag = self.client.last_etag
        return marker in body


def propagation(dataset, writer, reader, token, rounds=5, component="component-000"):
    """Changes `component_version` of a component every cluster uses (the catalog's value,
    which no cluster overrides, so every cluster's inputs change) through the writer, and
    measures on the reader, from the moment the write is sent:

    - applied: when a sentinel cluster, polled every 5 ms, first serves the new value. A
      replica swaps in all the clusters a change rebuilt at once, so this is when every
      cluster changes;
    - all confirmed: when a sweep of every other cluster, started at that moment, has seen
      each of them serve it (an upper bound: the sweep itself takes time).

    The polling is kept light so that it does not slow down what it measures."""
    using = [c for c in dataset["clusters"] if any(r["id"] == component for r in c["platform_components"])]
    client = Client(reader, token)
    pollers = [Poller(client, cluster) for cluster in using]
    results = []
    for round_ in range(rounds):
        version = f"propagated-{int(time.time())}-{round_}"
        marker = f'"component_version":"{version}"'.encode()
        sentinel, others = pollers[0], pollers[1:]
        outcome = {}

        def write():
            status, body = Client(writer, token).request(
                "PATCH", f"/platform_components/{component}", {"component_version": version},
                {"Content-Type": "application/merge-patch+json"})
            if status != 200:
                sys.exit(f"PATCH: {status} {body[:300]!r}")
            outcome["acknowledged"] = time.monotonic() - start

        writing = threading.Thread(target=write)
        start = time.monotonic()
        writing.start()
        while not sentinel.shows(marker):
            if time.monotonic() - start > 30:
                sys.exit("the replica did not show the change within 30 s")
            time.sleep(0.005)
        applied = time.monotonic() - start
        pending = others
        while pending:
            pending = [p for p in pending if not p.shows(marker)]
            if time.monotonic() - start > 30:
                sys.exit(f"{len(pending)} clusters did not show the change within 30 s")
        confirmed = time.monotonic() - start
        writing.join()
        results.append({
            "clusters": len(using),
            "write_acknowledged_ms": ms(outcome["acknowledged"]),
            "applied_ms": ms(applied),
            "all_confirmed_ms": ms(confirmed),
        })
        time.sleep(2)
    return results


def ms(seconds):
    return round(seconds * 1000, 1)


def ready(url, timeout):
    """Seconds until GET /ready answers 200."""
    started = time.monotonic()
    parts = urllib.parse.urlsplit(url)
    while time.monotonic() - started < timeout:
        try:
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=1)
            connection.request("GET", "/ready")
            if connection.getresponse().status == 200:
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.01)
    sys.exit(f"{url}/ready did not answer 200 within {timeout} s")


def percentile(values, p):
    return values[min(len(values) - 1, int(len(values) * p / 100))]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    g = commands.add_parser("generate")
    g.add_argument("--size", choices=SIZES, default="M")
    g.add_argument("--clusters", type=int)
    g.add_argument("--seed", type=int, default=20261123)
    for name in ["load", "paths", "export", "propagation"]:
        c = commands.add_parser(name)
        c.add_argument("dataset")
        if name != "paths":
            c.add_argument("--token", required=True)
        if name in ("load", "export"):
            c.add_argument("--url", required=True)
        if name == "export":
            c.add_argument("--root", required=True)
        if name == "propagation":
            c.add_argument("--writer", required=True)
            c.add_argument("--reader", required=True)
            c.add_argument("--rounds", type=int, default=5)
    r = commands.add_parser("ready")
    r.add_argument("--url", required=True)
    r.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args()

    if args.command == "generate":
        json.dump(generate(args.clusters or SIZES[args.size], seed=args.seed), sys.stdout)
        return
    if args.command == "ready":
        print(f"{ready(args.url, args.timeout):.3f}")
        return
    with open(args.dataset) as f:
        dataset = json.load(f)
    if args.command == "load":
        seconds = load(dataset, args.url, args.token)
        print(f"loaded {len(dataset['clusters'])} clusters in {seconds:.1f} s")
    elif args.command == "paths":
        print("\n".join(paths(dataset)))
    elif args.command == "export":
        plain, compressed = export(dataset, args.url, args.token, args.root)
        print(f"exported {len(dataset['clusters'])} bodies, {plain / 1024:.1f} KiB on average "
              f"({compressed / 1024:.1f} KiB gzip-encoded)")
    elif args.command == "propagation":
        print(json.dumps(propagation(dataset, args.writer, args.reader, args.token, rounds=args.rounds)))


if __name__ == "__main__":
    main()
