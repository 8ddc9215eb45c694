#!/usr/bin/env python3
"""Fails when files of one crate import each other in a circle (issue 17: "no import circles
between files of the same crate"). Reads `crate::` and `super::` paths of every .rs file under
each SRC_DIR given, maps each to the file that defines it, and reports every strongly connected
group of files. A child module using its parent (`super::` from `scan/runner.rs` to `scan`) is
not a circle: the parent declares the child; a parent re-exporting from its child does count. Test modules (`#[cfg(test)] mod tests`) are left
out. Usage: import_circles.py SRC_DIR...
"""
import os
import re
import sys


def modules(root):
    found = {}
    for d, _, files in os.walk(root):
        for f in files:
            if f.endswith(".rs"):
                path = os.path.join(d, f)
                parts = os.path.relpath(path, root)[:-3].split(os.sep)
                if parts[-1] in ("mod", "lib", "main"):
                    parts = parts[:-1]
                found["::".join(parts)] = path
    return found


def graph(root):
    mods = modules(root)

    def resolve(path):
        segs = [s for s in path.split("::") if s]
        for i in range(len(segs), 0, -1):
            name = "::".join(segs[:i])
            if name in mods:
                return name
        return None

    edges = {m: set() for m in mods}
    use = re.compile(r"\b(crate|super)::((?:[a-z_0-9]+::)*)(\{[^;]*?\}|[A-Za-z_0-9]+)", re.S)
    for m, path in mods.items():
        with open(path, encoding="utf-8") as fh:
            src = fh.read()
        src = re.sub(r"#\[cfg\(test\)\]\s*mod tests\s*\{.*", "", src, flags=re.S)
        # A module re-exporting its child (`pub use read::get;` in connections/mod.rs) depends on
        # that child: whoever imports `connections::get` imports `read.rs`.
        for child in re.findall(r"\buse\s+(?:self::)?([a-z_0-9]+)::", src):
            if (m + "::" + child if m else child) in mods:
                edges[m].add(m + "::" + child if m else child)
        for kind, prefix, tail in use.findall(src):
            base = "" if kind == "crate" else "::".join(m.split("::")[:-1])
            pre = (base + "::" if base else "") + prefix
            names = [tail] if not tail.startswith("{") else re.findall(r"[a-z_0-9]+(?:::[a-z_0-9]+)*", tail)
            for n in names:
                target = resolve(pre + n)
                if target is not None and target != m and not m.startswith(target + "::"):
                    edges[m].add(target)
    return edges


def circles(edges):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in edges:
        if v not in index:
            visit(v)
    return out


def main():
    failed = False
    for root in sys.argv[1:]:
        edges = graph(root)
        for group in circles(edges):
            failed = True
            print(f"{root}: these files import each other in a circle:")
            for m in group:
                print(f"  {m or '(crate root)'} -> {', '.join(sorted(edges[m] & set(group)))}")
    if failed:
        sys.exit(1)
    print("no import circles in " + ", ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
