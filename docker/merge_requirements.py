#!/usr/bin/env python3
"""Merge interactvlm_ros/requirements.txt with the image's overrides (docker/requirements-jazzy.txt).

    merge_requirements.py BASE OVERRIDES [--drop NAME ...] > merged.txt

Prints BASE line by line, except that
  - a requirement whose name also appears in OVERRIDES is replaced by the OVERRIDES line;
  - a requirement named with --drop is left out (the Dockerfile drops torch, installed
    beforehand from the PyTorch index of the image's variant);
then appends the OVERRIDES requirements that BASE does not name (additions, e.g. a cap).
Names compare as PEP 503 normalises them (case, "-", "_", "."). Standard library only: it runs
with the image's system Python before anything is installed.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def normalize(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(line: str) -> str | None:
    """The normalised project name of a requirement line; None for blank lines, comments
    and pip options (-r, --index-url...)."""
    text = line.split("#", 1)[0].strip()
    if not text or text.startswith("-"):
        return None
    match = _NAME.match(text)
    if match is None:
        raise ValueError(f"not a requirement line: {line!r}")
    return normalize(match.group(1))


def merge(base_lines: list[str], override_lines: list[str], drop: tuple[str, ...] = ()) -> list[str]:
    """BASE with OVERRIDES applied (see the module docstring). Raises ValueError when OVERRIDES
    names a project twice or overrides a project that is also dropped."""
    dropped = {normalize(name) for name in drop}
    overrides: dict[str, str] = {}
    for line in override_lines:
        name = requirement_name(line)
        if name is None:
            continue
        if name in overrides:
            raise ValueError(f"{name} appears twice in the overrides")
        if name in dropped:
            raise ValueError(f"{name} is both overridden and dropped")
        overrides[name] = line.strip()

    merged: list[str] = []
    used: set[str] = set()
    for line in base_lines:
        name = requirement_name(line)
        if name is None:
            merged.append(line.rstrip("\n"))
        elif name in dropped:
            merged.append(f"# {line.strip()}  (dropped: installed separately)")
        elif name in overrides:
            merged.append(f"{overrides[name]}  # overrides {line.strip()}")
            used.add(name)
        else:
            merged.append(line.rstrip("\n"))
    additions = [line for name, line in overrides.items() if name not in used]
    if additions:
        merged.append("# additions from the overrides")
        merged.extend(additions)
    return merged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", type=Path)
    parser.add_argument("overrides", type=Path)
    parser.add_argument("--drop", action="append", default=[], metavar="NAME",
                        help="leave this requirement out (repeatable)")
    args = parser.parse_args(argv)
    try:
        lines = merge(args.base.read_text().splitlines(), args.overrides.read_text().splitlines(),
                      tuple(args.drop))
    except ValueError as exc:
        print(f"merge_requirements.py: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
