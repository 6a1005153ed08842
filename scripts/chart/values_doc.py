#!/usr/bin/env python3
"""The chart's values table, generated from the comments in values.yaml.

Every value in values.yaml carries a `# -- description` comment right above it (the helm-docs
convention). A mapping with such a comment is one value (its default shown whole); a mapping
without one is a section whose keys are documented one by one.

    python3 scripts/chart/values_doc.py            # print the table
    python3 scripts/chart/values_doc.py --write    # refresh it in helm/flux-catalog/README.md
    python3 scripts/chart/values_doc.py --check    # fail if a value is undocumented or the
                                                   # README's table is stale

check-chart.sh runs the --check part through check_chart.py.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

START = "<!-- values-table:start (scripts/chart/values_doc.py --write) -->"
END = "<!-- values-table:end -->"
KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.\-]+):(?P<rest>.*)$")


@dataclass
class Value:
    path: str
    description: str
    default: object


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def parse(values_file: Path) -> tuple[list[Value], list[str]]:
    """The documented values in file order, and the paths of undocumented ones."""
    text = values_file.read_text()
    defaults = yaml.safe_load(text) or {}
    lines = text.splitlines()
    values: list[Value] = []
    undocumented: list[str] = []
    stack: list[tuple[int, str]] = []  # (indent, key) of the enclosing sections
    comments: list[tuple[int, str]] = []
    skip_deeper_than: int | None = None  # inside a value's block (a list or a documented map)

    def lookup(path: list[str]) -> object:
        node: object = defaults
        for part in path:
            node = node[part]  # type: ignore[index]
        return node

    for number, line in enumerate(lines):
        stripped = line.strip()
        if skip_deeper_than is not None:
            if not stripped or _indent(line) > skip_deeper_than or (
                stripped.startswith("- ") and _indent(line) == skip_deeper_than
            ):
                continue
            skip_deeper_than = None
        if not stripped:
            comments = []
            continue
        if stripped.startswith("#"):
            comments.append((_indent(line), stripped))
            continue
        match = KEY.match(line)
        if not match:
            comments = []
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = [k for _, k in stack] + [match["key"]]
        own = [c for i, c in comments if i == indent]
        comments = []
        description = None
        for i, comment in enumerate(own):
            if comment.startswith("# --"):
                parts = [comment[len("# --"):].strip()] + [c.lstrip("#").strip() for c in own[i + 1:]]
                description = " ".join(p for p in parts if p)
                break
        rest = match["rest"].split(" #")[0].strip()
        # What follows on the next significant line tells a section from a block value.
        following = next(
            (l for l in lines[number + 1:] if l.strip() and not l.strip().startswith("#")), ""
        )
        opens_block = not rest and _indent(following) > indent
        is_section = opens_block and not following.strip().startswith("- ") and description is None
        if is_section:
            stack.append((indent, match["key"]))
            continue
        dotted = ".".join(path)
        if description is None:
            undocumented.append(dotted)
        else:
            values.append(Value(dotted, description, lookup(path)))
        if opens_block:
            skip_deeper_than = indent
    return values, undocumented


def table(values: list[Value]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    rows = ["| Key | Default | Description |", "|---|---|---|"]
    for v in values:
        default = json.dumps(v.default, separators=(",", ":"))
        rows.append(f"| `{v.path}` | `{cell(default)}` | {cell(v.description)} |")
    return "\n".join(rows)


def readme_table(readme: Path) -> str | None:
    if not readme.is_file():
        return None
    text = readme.read_text()
    if START not in text or END not in text:
        return None
    return text.split(START, 1)[1].split(END, 1)[0].strip()


def write(readme: Path, generated: str) -> None:
    text = readme.read_text()
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    readme.write_text(f"{head}{START}\n{generated}\n{END}{tail}")


def main() -> int:
    chart = Path(__file__).resolve().parents[2] / "helm" / "flux-catalog"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chart", type=Path, default=chart)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true")
    group.add_argument("--check", action="store_true")
    args = parser.parse_args()
    values, undocumented = parse(args.chart / "values.yaml")
    generated = table(values)
    readme = args.chart / "README.md"
    if args.write:
        write(readme, generated)
        return 0
    if args.check:
        problems = [f"undocumented value: {p}" for p in undocumented]
        if readme_table(readme) != generated:
            problems.append(f"{readme}: the values table is stale; run {sys.argv[0]} --write")
        for p in problems:
            print(p, file=sys.stderr)
        return 1 if problems else 0
    print(generated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
