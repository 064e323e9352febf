"""Write docs/api/*.md: one mkdocstrings page per public namespace of rtrrl.

The packages re-export their public names from private modules (``from ._x import Y as Y``),
which mkdocstrings does not list by itself; this lists each one explicitly. Run it from the
repository root after adding or removing a public name: ``python tools/gen_api_docs.py``.
"""

import pathlib

import griffe

pages = {
    "rtrrl": ["rtrrl"],
    "cells": ["rtrrl.cells"],
    "estimators": ["rtrrl.estimators"],
    "traces": ["rtrrl.traces"],
    "heads": ["rtrrl.heads"],
    "envs": ["rtrrl.envs"],
    "agent": ["rtrrl.agent"],
    "algorithms": ["rtrrl.algorithms"],
    "training": ["rtrrl.training"],
    "online": ["rtrrl.online"],
    "testing": ["rtrrl.testing"],
    "presets": ["rtrrl.presets", "rtrrl.prng"],
}
root = griffe.load("rtrrl", search_paths=["."])  # run from the repository root
modules = set()


def walk(m):
    modules.add(m.path)
    for c in m.modules.values():
        walk(c)


walk(root)
for page, mods in pages.items():
    out = ["# " + " and ".join(f"`{m}`" for m in mods), ""]
    for modname in mods:
        mod = root if modname == "rtrrl" else root[modname.removeprefix("rtrrl.")]
        if len(mods) > 1:
            out += [f"## `{modname}`", ""]

        def ours(o):
            try:
                return (
                    o.final_target.path.startswith("rtrrl.")
                    and not o.final_target.path.startswith("rtrrl._types")
                    and not o.final_target.is_module
                )
            except Exception:
                return False

        names = [
            n
            for n, o in mod.members.items()
            if not n.startswith("_") and o.is_alias and o.target_path not in modules and ours(o)
        ]
        own = [
            n
            for n, o in mod.members.items()
            if not n.startswith("_") and not o.is_alias and (o.is_class or o.is_function)
        ]
        if own or not names:  # a plain module: its own definitions
            out += [f"::: {modname}", ""]
            continue
        out += [
            f"::: {modname}",
            "    options:",
            "      members: false",
            "      show_root_heading: false",
            "      show_root_toc_entry: false",
            "",
        ]
        out += [line for n in names for line in (f"::: {modname}.{n}", "")]
    pathlib.Path(f"docs/api/{page}.md").write_text("\n".join(out).rstrip() + "\n")
    print(page, sum(line.startswith(":::") for line in out))
