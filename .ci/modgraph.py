#!/usr/bin/env python3
"""The `crate::X` edges between the top-level modules of the library, and
their cycles. Exits 1 when there is a cycle (DEVELOPERS.md: modules are
layered, lowest first, and none imports one above it).

Usage: python3 .ci/modgraph.py [SRC_DIR]
Comments are stripped; inline paths count as well as `use` lines and
`use crate::{a, b}` groups; src/bin is left out (it is not the library).
"""
import os, re, sys
from collections import defaultdict

root = sys.argv[1] if len(sys.argv) > 1 else 'src'
prefix = 'crate::'
edges = defaultdict(set)
for dirpath, _, files in os.walk(root):
    for f in files:
        if not f.endswith('.rs'):
            continue
        path = os.path.join(dirpath, f)
        rel = os.path.relpath(path, root)
        if rel.startswith('bin' + os.sep) or rel in ('lib.rs', 'main.rs', 'mod.rs'):
            continue
        top = rel.split(os.sep)[0].removesuffix('.rs')
        text = open(path, encoding='utf-8').read()
        text = re.sub(r'//[^\n]*', '', text)
        for m in re.finditer(re.escape(prefix) + r'([a-z_][a-z0-9_]*)', text):
            if m.group(1) != top:
                edges[top].add(m.group(1))
        # `use crate::{a, b::c}` groups
        for m in re.finditer(re.escape(prefix.rstrip(':')) + r'::\{([^;]*)\}', text):
            for name in re.findall(r'(?:^|[,{]\s*)([a-z_][a-z0-9_]*)', m.group(1)):
                if name not in (top, 'self'):
                    edges[top].add(name)
mods = sorted(set(edges) | {d for v in edges.values() for d in v})
for m in mods:
    print(f"{m:10} -> {', '.join(sorted(edges.get(m, ()))) or '(none)'}")
# Tarjan SCC
index, low, stack, on, sccs, i = {}, {}, [], set(), [], [0]
def visit(v):
    index[v] = low[v] = i[0]; i[0] += 1; stack.append(v); on.add(v)
    for w in edges.get(v, ()):
        if w not in index:
            visit(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1:
            sccs.append(sorted(comp))
sys.setrecursionlimit(10000)
for v in mods:
    if v not in index:
        visit(v)
print("cycles:", sccs if sccs else "none")
sys.exit(1 if sccs else 0)
