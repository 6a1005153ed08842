#!/usr/bin/env python3
"""Replays the memory and starvation attacks of issue 11 against a running flux-catalog and
prints what they did to it: resident memory before, at its peak during, and after each
attack, and for the write burst, how reads and /ready fared meanwhile.

    python3 bench/attack.py --url http://127.0.0.1:8080 --pid PID \
        --read-token R --write-token W [ATTACK ...]

Attacks (all by default, in this order):
  nonreading   300 connections each pipeline 2,000 GET /openapi.json and never read
  slowbody     500 connections send a write's body at 1 byte per second
  bigbodies    256 parallel 1 MB dry-run PATCHes
  writers      256 parallel dry-run PATCHes for 20 s while /ready and reads are sampled

Standard library only, so it runs wherever python3 does. Prints one JSON object per attack.
"""

import argparse
import asyncio
import json
import statistics
import time
import urllib.parse


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


class Sampler:
    """Samples the server's resident memory every 100 ms while running."""

    def __init__(self, pid):
        self.pid = pid
        self.peak = 0.0
        self._task = None

    async def _run(self):
        while True:
            self.peak = max(self.peak, rss_mib(self.pid))
            await asyncio.sleep(0.1)

    def __enter__(self):
        self.peak = rss_mib(self.pid)
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc):
        self._task.cancel()


async def settle(pid, seconds):
    """Resident memory after `seconds`, taken as the lowest of the last samples."""
    samples = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        samples.append(rss_mib(pid))
        await asyncio.sleep(0.5)
    return min(samples[-3:])


async def open_connection(url):
    return await asyncio.open_connection(url.hostname, url.port)


async def request(url, method, path, token=None, body=None, timeout=30.0):
    """One request on its own connection: (status, headers, body, seconds)."""
    started = time.monotonic()
    reader, writer = await open_connection(url)
    try:
        head = [f"{method} {path} HTTP/1.1", f"Host: {url.netloc}", "Connection: close"]
        if token:
            head.append(f"Authorization: Bearer {token}")
        if body is not None:
            head.append("Content-Type: application/merge-patch+json")
            head.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + (body or b""))
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    header_end = raw.find(b"\r\n\r\n")
    lines = raw[:header_end].decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and lines[0] else 0
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, raw[header_end + 4 :], time.monotonic() - started


async def nonreading(args, url):
    """Clients that pipeline requests for a large document and never read the answers."""
    before = rss_mib(args.pid)
    one = f"GET /openapi.json HTTP/1.1\r\nHost: {url.netloc}\r\n\r\n".encode()
    connections = []
    with Sampler(args.pid) as sampler:
        for _ in range(args.connections):
            try:
                reader, writer = await open_connection(url)
            except OSError:
                break
            writer.write(one * args.pipelined)
            connections.append((reader, writer))
        await asyncio.sleep(args.hold)
        during = sampler.peak
        # Which connections the server has closed by now: their reads end at EOF after
        # whatever it had written.
        closed = 0
        for reader, _ in connections:
            try:
                while await asyncio.wait_for(reader.read(1 << 20), 0.05):
                    pass
                closed += 1
            except (asyncio.TimeoutError, ConnectionError):
                pass
        for _, writer in connections:
            writer.transport.abort()
    after = await settle(args.pid, args.settle)
    return {
        "attack": "nonreading",
        "connections": len(connections),
        "pipelined_each": args.pipelined,
        "rss_mib_before": round(before, 1),
        "rss_mib_peak": round(during, 1),
        "rss_mib_after_close": round(after, 1),
        "closed_by_server_within_hold": closed,
        "hold_s": args.hold,
    }


async def slowbody(args, url):
    """Clients that send a write's body one byte per second."""
    before = rss_mib(args.pid)
    length = 1000
    head = (
        f"POST /clusters?dry_run=true HTTP/1.1\r\nHost: {url.netloc}\r\n"
        f"Authorization: Bearer {args.write_token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()
    closed_at = []
    started = time.monotonic()

    async def one():
        try:
            reader, writer = await open_connection(url)
        except OSError:
            closed_at.append(0.0)
            return
        writer.write(head)

        async def trickle():
            try:
                for _ in range(length):
                    writer.write(b" ")
                    await writer.drain()
                    await asyncio.sleep(1)
            except (ConnectionError, OSError):
                pass

        trickler = asyncio.get_running_loop().create_task(trickle())
        try:
            await asyncio.wait_for(reader.read(), args.slow_hold)
            closed_at.append(time.monotonic() - started)
        except (asyncio.TimeoutError, ConnectionError):
            pass
        finally:
            trickler.cancel()
            writer.transport.abort()

    with Sampler(args.pid) as sampler:
        await asyncio.gather(*(one() for _ in range(args.slow_connections)))
        peak = sampler.peak
    after = await settle(args.pid, args.settle)
    return {
        "attack": "slowbody",
        "connections": args.slow_connections,
        "closed_by_server": len(closed_at),
        "still_open_after_s": args.slow_hold,
        "still_open": args.slow_connections - len(closed_at),
        "median_s_to_close": round(statistics.median(closed_at), 1) if closed_at else None,
        "rss_mib_before": round(before, 1),
        "rss_mib_peak": round(peak, 1),
        "rss_mib_after": round(after, 1),
    }


async def bigbodies(args, url):
    """Many large dry-run writes at once."""
    before = rss_mib(args.pid)
    # A valid merge patch just under the default 1 MiB limit: whitespace pads it to size, so
    # the server must read and parse all of it.
    body = b'{"component_version": "9.9.9"' + b" " * ((1 << 20) - 64) + b"}"
    path = f"/platform_components/{args.component}?dry_run=true"
    statuses = {}
    with Sampler(args.pid) as sampler:
        results = await asyncio.gather(
            *(request(url, "PATCH", path, args.write_token, body) for _ in range(args.bodies)),
            return_exceptions=True,
        )
        peak = sampler.peak
    for result in results:
        key = str(result[0]) if isinstance(result, tuple) else type(result).__name__
        statuses[key] = statuses.get(key, 0) + 1
    after = await settle(args.pid, args.settle)
    return {
        "attack": "bigbodies",
        "requests": args.bodies,
        "body_bytes": len(body),
        "statuses": statuses,
        "rss_mib_before": round(before, 1),
        "rss_mib_peak": round(peak, 1),
        "rss_mib_after": round(after, 1),
    }


async def writers(args, url):
    """A burst of dry-run writes; meanwhile, /ready and database-backed reads are sampled."""
    before = rss_mib(args.pid)
    stop = time.monotonic() + args.write_seconds
    path = f"/platform_components/{args.component}?dry_run=true"
    body = b'{"component_version": "9.9.9"}'
    statuses = {}

    async def writer_loop():
        while time.monotonic() < stop:
            try:
                status, _, _, _ = await request(url, "PATCH", path, args.write_token, body)
            except (OSError, asyncio.TimeoutError) as error:
                status = type(error).__name__
            statuses[str(status)] = statuses.get(str(status), 0) + 1

    ready_samples = []
    read_seconds = []
    stale_flux = 0
    flux_samples = 0

    async def observer():
        nonlocal stale_flux, flux_samples
        await asyncio.sleep(1)
        while time.monotonic() < stop - 0.5:
            status, _, body_bytes, _ = await request(url, "GET", "/ready")
            try:
                database = json.loads(body_bytes).get("database")
            except ValueError:
                database = None
            ready_samples.append((status, database))
            _, _, _, seconds = await request(url, "GET", f"/platform_components/{args.component}", args.read_token)
            read_seconds.append(seconds)
            _, headers, _, _ = await request(url, "GET", f"/api/v2/flux/clusters/{args.cluster}/platform-components", args.read_token)
            flux_samples += 1
            stale_flux += headers.get("x-catalog-stale") == "true"
            await asyncio.sleep(1.5)

    with Sampler(args.pid) as sampler:
        await asyncio.gather(observer(), *(writer_loop() for _ in range(args.writers)))
        peak = sampler.peak
    return {
        "attack": "writers",
        "writers": args.writers,
        "seconds": args.write_seconds,
        "write_statuses": statuses,
        "ready_samples": len(ready_samples),
        "ready_not_200": sum(1 for status, _ in ready_samples if status != 200),
        "ready_database_values": sorted({str(db) for _, db in ready_samples}),
        "db_read_median_ms": round(statistics.median(read_seconds) * 1000, 1) if read_seconds else None,
        "db_read_max_ms": round(max(read_seconds) * 1000, 1) if read_seconds else None,
        "flux_replies_stale": f"{stale_flux} of {flux_samples}",
        "rss_mib_before": round(before, 1),
        "rss_mib_peak": round(peak, 1),
    }


ATTACKS = {"nonreading": nonreading, "slowbody": slowbody, "bigbodies": bigbodies, "writers": writers}


async def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("attacks", nargs="*", help=", ".join(ATTACKS))
    parser.add_argument("--url", required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--read-token", required=True)
    parser.add_argument("--write-token", required=True)
    parser.add_argument("--component", default="cert-manager")
    parser.add_argument("--cluster", default="demo-prod-01.k8s.example.com")
    parser.add_argument("--connections", type=int, default=300)
    parser.add_argument("--pipelined", type=int, default=2000)
    parser.add_argument("--hold", type=float, default=20.0)
    parser.add_argument("--slow-connections", type=int, default=500)
    parser.add_argument("--slow-hold", type=float, default=60.0)
    parser.add_argument("--bodies", type=int, default=256)
    parser.add_argument("--writers", type=int, default=256)
    parser.add_argument("--write-seconds", type=float, default=20.0)
    parser.add_argument("--settle", type=float, default=5.0)
    args = parser.parse_args()
    unknown = [name for name in args.attacks if name not in ATTACKS]
    if unknown:
        parser.error(f"unknown attacks {unknown}: choose from {', '.join(ATTACKS)}")
    url = urllib.parse.urlsplit(args.url)
    for name in args.attacks or list(ATTACKS):
        print(json.dumps(await ATTACKS[name](args, url)), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
