#!/usr/bin/env python3
"""The import edges between the modules of the library, and their cycles, at
every level: between the top-level modules and between the modules of each
folder (`policy/compile` -> `policy/ruleset`). Exits 1 when there is a cycle
(DEVELOPERS.md: modules are layered, lowest first, and none imports one above
it; the same holds inside a folder).

Usage: python3 .ci/modgraph.py [SRC_DIR]

A file's references are its `crate::`, `super::` and `self::` paths, in `use`
lines (groups `use super::{a, b::c}` expanded) and inline alike; comments and
string literals are skipped, and an inline `mod x { ... }` shifts what
`super::` means inside it. A path names the deepest module it reaches (a
file or a folder). An edge from module A to module B counts at the level of
their closest common folder, between the two children of that folder that
hold them: `crate::policy::ruleset::X` written in `policy/compile.rs` is the
edge compile -> ruleset inside `policy/`. A folder's own file (`lib.rs`,
`foo.rs` beside `foo/`, or `foo/mod.rs`) is the folder's face, not one of its
children: its edges to them, and theirs to it (`use super::Item`), are not
counted, as `lib.rs` never was. src/bin is left out (it is not the library).
"""
import os, re, sys
from collections import defaultdict

root = sys.argv[1] if len(sys.argv) > 1 else 'src'


def module_of(rel):
    """`policy/compile.rs` -> ('policy', 'compile'); `policy/mod.rs`, `policy.rs` -> ('policy',)."""
    parts = rel[:-3].split(os.sep)
    if parts[-1] in ('mod', 'lib', 'main'):
        parts = parts[:-1]
    return tuple(parts)


files = {}
for dirpath, _, names in os.walk(root):
    for f in names:
        if f.endswith('.rs'):
            rel = os.path.relpath(os.path.join(dirpath, f), root)
            if rel.startswith('bin' + os.sep) or rel == 'main.rs':
                continue
            files[rel] = module_of(rel)
modules = set(files.values())
# A folder is a module too even when its face file is missing (e.g. `history/` of tests only).
for m in list(modules):
    for i in range(1, len(m)):
        modules.add(m[:i])


def strip(text):
    """Comments, string and char literals out; braces and paths stay in place."""
    text = re.sub(r'/\*.*?\*/', ' ', text, flags=re.S)
    text = re.sub(r'//[^\n]*', '', text)
    text = re.sub(r'r(#*)".*?"\1', '""', text, flags=re.S)
    text = re.sub(r'b?"(?:\\.|[^"\\])*"', '""', text, flags=re.S)
    text = re.sub(r"b?'(?:\\.|[^'\\])'", "' '", text)
    return text


def expand(tree):
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e'] (`as` renames dropped)."""
    tree = re.sub(r'\s+as\s+[A-Za-z_][A-Za-z0-9_]*', '', tree)
    tree = re.sub(r'\s+', '', tree)
    out = []

    def walk(prefix, s):
        i = s.find('{')
        if i < 0:
            for item in split_top(s):
                out.append(prefix + item)
            return
        head, body = s[:i], s[i + 1:s.rfind('}')]
        for item in split_top(body):
            if '{' in item:
                walk(prefix + head, item)
            else:
                out.append(prefix + head + item)

    walk('', tree)
    return [p for p in out if p]


def split_top(s):
    depth, cur, parts = 0, '', []
    for ch in s:
        if ch == ',' and depth == 0:
            parts.append(cur)
            cur = ''
            continue
        depth += ch == '{'
        depth -= ch == '}'
        cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


PATH = re.compile(r'(?<![A-Za-z0-9_$])(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)')
USE = re.compile(r'\buse\s+((?:crate|super|self)::[^;]*);')
INLINE_MOD = re.compile(r'\bmod\s+([a-z_][a-z0-9_]*)\s*\{')


def resolve(here, path):
    """Absolute module reached by `path` written in module `here`, or None."""
    segs = path.split('::')
    if segs[0] == 'crate':
        base, rest = (), segs[1:]
    else:
        base = here
        rest = segs
        while rest and rest[0] in ('super', 'self'):
            if rest[0] == 'super':
                if not base:
                    return None
                base = base[:-1]
            rest = rest[1:]
    best = base
    cur = base
    for s in rest:
        cur = cur + (s,)
        if cur in modules:
            best = cur
        else:
            break
    return best


def references(text, module):
    """(module the reference is written in, path) for each reference of a file."""
    text = strip(text)
    # The module each offset is in: the file's, or an inline `mod x {` inside it.
    spans = []
    for m in INLINE_MOD.finditer(text):
        depth, i = 0, m.end() - 1
        while i < len(text):
            depth += text[i] == '{'
            depth -= text[i] == '}'
            if depth == 0:
                break
            i += 1
        spans.append((m.end(), i, m.group(1)))

    def mod_at(pos):
        inner = [s for s in spans if s[0] <= pos < s[1]]
        inner.sort()
        return module + tuple(name for _, _, name in inner)

    seen = []
    for m in USE.finditer(text):
        for p in expand(m.group(1)):
            seen.append((mod_at(m.start()), p.rstrip(':*').rstrip(':')))
        text = text[:m.start()] + ' ' * (m.end() - m.start()) + text[m.end():]
    for m in PATH.finditer(text):
        seen.append((mod_at(m.start()), m.group(1) + m.group(2)))
    return seen


# level (folder) -> child -> children it imports
levels = defaultdict(lambda: defaultdict(set))
for rel, module in sorted(files.items()):
    text = open(os.path.join(root, rel), encoding='utf-8').read()
    for where, path in references(text, module):
        target = resolve(where, path)
        if target is None:
            continue
        a, b = module, target
        n = 0
        while n < min(len(a), len(b)) and a[n] == b[n]:
            n += 1
        if n == len(a) or n == len(b):
            continue  # to or from the folder's own face, or within one module
        levels[a[:n]][a[n]].add(b[n])

top = levels[()]
names = sorted(set(top) | {d for v in top.values() for d in v})
for m in names:
    print(f"{m:10} -> {', '.join(sorted(top.get(m, ()))) or '(none)'}")


def sccs_of(edges):
    index, low, stack, on, out, i = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = i[0]
        i[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
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
                out.append(sorted(comp))

    for v in sorted(set(edges) | {d for s in edges.values() for d in s}):
        if v not in index:
            visit(v)
    return out


sys.setrecursionlimit(10000)
cycles = []
for level in sorted(levels):
    for comp in sccs_of(levels[level]):
        folder = '/'.join(level)
        cycles.append([f"{folder}/{m}" if folder else m for m in comp])
        inner = {m: sorted(levels[level][m] & set(comp)) for m in comp}
        print(f"cycle in {folder or 'src'}/: " + '; '.join(f"{m} -> {', '.join(d)}" for m, d in inner.items()))
print("cycles:", cycles if cycles else "none")
sys.exit(1 if cycles else 0)
