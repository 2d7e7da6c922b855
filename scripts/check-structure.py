#!/usr/bin/env python3
"""Structure checks a reviewer can run (`make lint` runs them).

1. No service crate depends on another service crate (from each Cargo.toml).
2. No production source file is over 500 lines (unit tests in a trailing
   `#[cfg(test)] mod tests { ... }` do not count).
3. No import cycle between the top-level modules of a service crate: an edge
   a -> b exists when a file of module `a` names `crate::b` (in `use` or a path).
"""
import pathlib
import re
import sys
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent
MAX_LINES = 500
SERVICES = sorted(p.parent for p in (ROOT / "services").glob("*/Cargo.toml"))
CRATE_PATH = re.compile(r"\bcrate::(?:\{\s*)?([a-z_][a-z0-9_]*)")


def service_names():
    names = {}
    for crate in SERVICES:
        manifest = tomllib.loads((crate / "Cargo.toml").read_text())
        names[manifest["package"]["name"]] = crate
    return names


def check_dependencies(names):
    """A service crate (other than the binary) must not depend on another service crate."""
    problems = []
    for name, crate in names.items():
        manifest = tomllib.loads((crate / "Cargo.toml").read_text())
        if name == "switchboard":  # the binary composes the services
            continue
        for dep in manifest.get("dependencies", {}):
            if dep in names and dep != name:
                problems.append(f"{crate.relative_to(ROOT)}: service crate {name} depends on service crate {dep}")
    return problems


def production_lines(text):
    """Lines before a trailing `#[cfg(test)]` module (unit tests beside the code do not count)."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.strip() == "#[cfg(test)]" and index + 1 < len(lines) and lines[index + 1].lstrip().startswith("mod "):
            if not lines[index + 1].rstrip().endswith(";"):
                return index
    return len(lines)


def check_sizes():
    problems = []
    for directory in ("services", "shared", "proto"):
        for path in sorted((ROOT / directory).rglob("src/**/*.rs")):
            if "/tests/" in str(path) or "/testkit/" in str(path):
                continue
            count = production_lines(path.read_text())
            if count > MAX_LINES:
                problems.append(f"{path.relative_to(ROOT)}: {count} production lines (at most {MAX_LINES})")
    return problems


def top_module(src, path):
    rel = path.relative_to(src)
    first = rel.parts[0]
    if len(rel.parts) == 1:
        return None if first in ("lib.rs", "main.rs") else first.removesuffix(".rs")
    return first


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())


def find_cycle(graph):
    """Returns one cycle as a list of modules, or None."""
    state = {}
    stack = []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def check_cycles():
    problems = []
    for crate in SERVICES:
        src = crate / "src"
        modules = {top_module(src, p) for p in src.rglob("*.rs")} - {None}
        graph = {m: set() for m in modules}
        for path in src.rglob("*.rs"):
            module = top_module(src, path)
            if module is None:
                continue
            text = strip_comments(path.read_text())
            for target in CRATE_PATH.findall(text):
                if target in modules and target != module:
                    graph[module].add(target)
            for group in re.findall(r"\bcrate::\{([^}]*)\}", text):
                for target in re.findall(r"(?:^|,)\s*([a-z_][a-z0-9_]*)", group):
                    if target in modules and target != module:
                        graph[module].add(target)
        while True:
            cycle = find_cycle(graph)
            if not cycle:
                break
            problems.append(f"{crate.relative_to(ROOT)}: module import cycle {' -> '.join(cycle)}")
            graph[cycle[0]].discard(cycle[1])  # report the others too
    return problems


def main():
    names = service_names()
    problems = check_dependencies(names) + check_sizes() + check_cycles()
    for problem in problems:
        print(problem)
    if problems:
        print(f"check-structure: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print("check-structure: services independent, files within size, no module cycles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
