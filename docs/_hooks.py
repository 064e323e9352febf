"""MkDocs hooks: the results pages under benchmarks/results/ join the site.

They keep their place relative to docs/ (``../benchmarks/results/x.md``), so the same links
work on GitHub and on the site: each link out of docs/ into benchmarks/results/ is rewritten
to the copy at ``benchmarks/results/`` inside the site.
"""

import os
import posixpath
import re

from mkdocs.structure.files import File

RESULTS = "benchmarks/results"
_LINK = re.compile(r"\]\((?P<target>[^)\s#]+)(?P<rest>[^)]*)\)")


def on_files(files, config):
    root = os.path.dirname(config["config_file_path"])
    for folder, _, names in sorted(os.walk(os.path.join(root, RESULTS))):
        for name in sorted(names):
            if name.endswith((".md", ".png", ".yaml")):  # pages, plots, sweep configs
                path = os.path.join(folder, name)
                uri = os.path.relpath(path, root).replace(os.sep, "/")
                files.append(File.generated(config, uri, abs_src_path=path))
    return files


def on_page_markdown(markdown, page, config, files):
    here = posixpath.dirname(page.file.src_uri)
    if page.file.src_uri.startswith(RESULTS):
        return markdown

    def fix(match):
        target = match["target"]
        if "://" in target:
            return match[0]
        in_repo = posixpath.normpath(posixpath.join("docs", here, target))
        if in_repo.startswith(RESULTS + "/"):
            # The copy's place in the site is its place in the repository.
            target = posixpath.relpath(in_repo, here or ".")
        return f"]({target}{match['rest']})"

    return _LINK.sub(fix, markdown)
