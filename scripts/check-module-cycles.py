#!/usr/bin/env python3
"""Fail when two source files of a crate import each other, directly or through a cycle.

A file imports another when it names an item (through `use`, an inline `crate::`,
`super::` or `self::` path, or a child module's name) that the other file defines. Test code
(`#[cfg(test)]` modules, inline or in their own files) is left out: tests reach the crate through
its entry points, which is what they are for, not a knot in its structure. Re-exports (`pub use`) and `mod`
declarations are the module tree's shape, not imports: a path through a re-export is followed
to the file that defines the item. Run from the workspace root; exits 1 and prints every cycle.
"""
import re
import sys
from pathlib import Path

USE_RE = re.compile(r"^\s*(pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", re.M)
INLINE_RE = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
MOD_RE = re.compile(
    r"^\s*(#\[cfg\(test\)\]\s*)?(?:pub(?:\([^)]*\))?\s+)?mod\s+([A-Za-z_][A-Za-z0-9_]*)\s*;", re.M
)


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    # re.S: a `\` before a line break continues a string literal.
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', text, flags=re.S)


def expand(tree):
    """`a::{b, c::{d, e}}` -> [a::b, a::c::d, a::c::e]."""
    tree = re.sub(r"\s+", "", tree)
    if "{" not in tree:
        return [tree]
    start = tree.index("{")
    prefix, body = tree[:start], tree[start + 1 : tree.rindex("}")]
    parts, depth, cur = [], 0, ""
    for ch in body:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    parts.append(cur)
    return [p for part in parts if part for p in expand(prefix + part)]


class Crate:
    def __init__(self, src):
        self.src = src
        self.modules = {}  # module path tuple -> file
        roots = [r for r in ("lib.rs", "main.rs") if (src / r).exists()]
        for root in roots:
            self.walk((), src / root, src)

    def walk(self, path, file, directory):
        self.modules[path] = file
        for test_only, name in MOD_RE.findall(strip_comments(file.read_text())):
            if test_only:
                continue
            for candidate, child_dir in (
                (directory / f"{name}.rs", directory / name),
                (directory / name / "mod.rs", directory / name),
            ):
                if candidate.exists():
                    self.walk(path + (name,), candidate, child_dir)
                    break

    def reexports(self, module):
        """Names that `module`'s file re-exports, each mapped to its full source path."""
        text = strip_comments(self.modules[module].read_text())
        out = {}
        for vis, tree in USE_RE.findall(text):
            if not vis:
                continue
            for path in expand(tree):
                segs = path.split("::")
                alias = segs[-1]
                if " as " in path or "as" in segs:
                    continue
                out[alias] = self.absolute(module, segs)
        return out

    def absolute(self, module, segs):
        if segs[0] == "crate":
            return list(segs[1:])
        if segs[0] == "self":
            return list(module) + segs[1:]
        base = list(module)
        while segs and segs[0] == "super":
            base = base[:-1]
            segs = segs[1:]
        if segs and tuple(base) == module and segs[0] not in self.child_names(module):
            return None  # an external crate
        return base + list(segs)

    def child_names(self, module):
        return {m[len(module)] for m in self.modules if len(m) > len(module) and m[: len(module)] == tuple(module)}

    def resolve(self, full, depth=0):
        """The file that defines the item at the absolute path `full`."""
        if full is None or depth > 8:
            return None
        module = ()
        for i, seg in enumerate(full):
            if module + (seg,) in self.modules:
                module = module + (seg,)
                continue
            rest = full[i:]
            target = self.reexports(module).get(rest[0]) if rest and rest[0] != "*" else None
            if target is not None and target != list(module) + rest[:1]:
                return self.resolve(target + rest[1:], depth + 1)
            return self.modules[module]
        return self.modules[module]

    def edges(self):
        out = {}
        for module, file in self.modules.items():
            targets = set()
            for inner, text in inline_modules(module, strip_comments(file.read_text())):
                targets |= self.targets(inner, file, text)
            out[file] = targets
        return out

    def targets(self, module, file, text):
        """The files that `text`, the body of `module` inside `file`, imports."""
        paths = []
        for vis, tree in USE_RE.findall(text):
            if vis and not vis.startswith("pub(crate)") and not vis.startswith("pub(super)"):
                continue
            paths += [p.split("::") for p in expand(tree)]
        paths += [[root] + tail.split("::")[1:] for root, tail in INLINE_RE.findall(text)]
        # A child module named without `self::` (`loaders::load_file(...)` in a parent); the
        # parent's re-exports of its children are its shape, not imports.
        uses_only = re.sub(r"^\s*pub(?:\([^)]*\))?\s+use\s+[^;]+;", "", text, flags=re.M)
        for child in self.child_names(module):
            pattern = r"(?<![\w:])" + child + r"((?:::[A-Za-z_][A-Za-z0-9_]*)+)"
            for tail in re.findall(pattern, uses_only):
                paths.append(["self", child] + tail.split("::")[1:])
        targets = set()
        for segs in paths:
            segs = [s.split(" as ")[0] for s in segs]
            if segs[0] not in ("crate", "super", "self"):
                continue
            target = self.resolve(self.absolute(module, segs))
            if target is not None and target != file:
                targets.add(target)
        return targets


def inline_modules(module, text):
    """`(module path, text)` for the file's own body and each inline `mod name { ... }` in it,
    so that `super::` inside a file's `mod tests` names the file itself."""
    match = re.search(r"(#\[cfg\(test\)\]\s*)?\bmod\s+([A-Za-z_][A-Za-z0-9_]*)\s*\{", text)
    if match is None:
        return [(module, text)]
    depth, end = 0, len(text)
    for i in range(match.end() - 1, len(text)):
        depth += text[i] == "{"
        depth -= text[i] == "}"
        if depth == 0:
            end = i
            break
    body = text[match.end() : end]
    outer = text[: match.start()] + text[end + 1 :]
    if match.group(1):
        return inline_modules(module, outer)
    return inline_modules(module, outer) + inline_modules(module + (match.group(2),), body)


def cycles(edges):
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in list(edges):
        if v not in index:
            strong(v)
    return found


def main():
    bad = 0
    for src in sorted(Path("crates").glob("*/src")):
        crate = Crate(src)
        for comp in cycles(crate.edges()):
            bad += 1
            print("import cycle:", " <-> ".join(str(f) for f in comp))
    if bad:
        sys.exit(1)
    print(f"no import cycles in {len(list(Path('crates').glob('*/src')))} crates")


if __name__ == "__main__":
    main()
