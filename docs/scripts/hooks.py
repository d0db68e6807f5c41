"""MkDocs hooks: generated API pages, command-line help and BibTeX.

Registered in ``mkdocs.yml`` (``hooks:``). Three markers are expanded in page
Markdown before it is rendered, so the site cannot drift from the code:

``<!-- api: PACKAGE [exclude=A,B] [order=m1,m2] -->``
    One mkdocstrings block (``::: module``) per module of *PACKAGE* found on
    disk (sub-packages included, recursively), except the excluded dotted
    prefixes; modules named in *order* come first, the rest alphabetically.
    A module added to the package therefore appears in the reference at once.

``<!-- argparse: MODULE:FUNCTION -->``
    The ``--help`` text of the :class:`argparse.ArgumentParser` returned by
    ``MODULE.FUNCTION()`` and of each of its subcommands, one section each,
    formatted 80 columns wide, exactly as the command prints it.

``<!-- citation-bibtex -->``
    BibTeX entries for the paper (``preferred-citation``) and the software,
    built from ``CITATION.cff``.

Files included with ``--8<-- "path"`` (pymdownx.snippets) are checked first, so a
missing one fails the build with a clear message.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from mkdocs.exceptions import PluginError

ROOT = Path(__file__).resolve().parents[2]

_API = re.compile(r"<!--\s*api:\s*(?P<args>[^>]*?)\s*-->")
_SNIPPET = re.compile(r'^\s*--8<--\s+"(?P<path>[^"]+)"\s*$', re.MULTILINE)
_ARGPARSE = re.compile(r"<!--\s*argparse:\s*(?P<target>[\w.]+:\w+)\s*-->")
_BIBTEX = "<!-- citation-bibtex -->"
#: Width of the generated help (argparse wraps at the terminal width).
HELP_COLUMNS = 80


def package_modules(package: str) -> list[str]:
    """Dotted names of a package and all its modules and sub-packages, on disk.

    Args:
        package: dotted package name, e.g. ``torchgeo_quake.models``

    Returns:
        Sorted dotted names (the package itself first); empty if the folder
        does not exist.
    """
    folder = ROOT.joinpath(*package.split("."))
    if not folder.is_dir():
        return []
    names = []
    for path in sorted(folder.rglob("*.py")):
        if "__pycache__" in path.parts or path.name == "__main__.py":
            continue
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if any(part.startswith("_") for part in parts):
            continue
        # Only modules of regular packages (every folder has an __init__.py):
        # that is what Griffe, and Python, can find.
        folders = path.relative_to(ROOT).parents
        if not all((ROOT / f / "__init__.py").exists() for f in list(folders)[:-1]):
            continue
        names.append(".".join(parts))
    return sorted(set(names), key=lambda n: (n != package, n))


def has_content(module: str) -> bool:
    """Whether a module has a docstring or public names worth a section.

    Args:
        module: dotted module name

    Returns:
        True unless the module is an empty package ``__init__``.
    """
    base = ROOT.joinpath(*module.split("."))
    path = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
    if not path.exists():
        return False
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return bool(ast.get_docstring(tree)) or bool(tree.body)


def api_blocks(args: str) -> str:
    """Markdown of the mkdocstrings blocks requested by an ``api`` marker.

    Args:
        args: text of the marker after ``api:``

    Returns:
        The blocks, or a note when the package has no module yet.
    """
    words = args.split()
    package, options = words[0], dict(w.split("=", 1) for w in words[1:])
    exclude = [e for e in options.get("exclude", "").split(",") if e]
    order = [f"{package}.{m}" for m in options.get("order", "").split(",") if m]
    modules = [
        m
        for m in package_modules(package)
        if not any(m == e or m.startswith(e + ".") for e in exclude) and has_content(m)
    ]
    if not modules:
        return (
            f'!!! note "Not written yet"\n    `{package}` has no modules in this '
            "version of the package yet; see the [Changelog](../changelog.md).\n"
        )
    head = [m for m in modules if m == package]
    ranked = [m for m in order if m in modules]
    rest = [m for m in modules if m not in head and m not in ranked]
    blocks = []
    for module in head + ranked + rest:
        if module == package:
            # The package itself: its docstring only (members are documented in
            # the modules that define them).
            blocks.append(f"::: {module}\n    options:\n      members: false\n")
        else:
            blocks.append(f"::: {module}\n")
    return "\n".join(blocks)


@contextmanager
def _columns(width: int) -> Iterator[None]:
    """Make argparse format help for a terminal *width* columns wide.

    Args:
        width: terminal width (argparse reads ``COLUMNS``)

    Yields:
        Nothing; ``COLUMNS`` is restored afterwards.
    """
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(width)
    try:
        yield
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


def command_help(parser: argparse.ArgumentParser) -> list[tuple[str, str]]:
    """The help of a parser and of each of its subcommands, recursively.

    Args:
        parser: the command-line parser

    Returns:
        ``(program, help text)`` pairs, the main command first.
    """
    with _columns(HELP_COLUMNS):
        helps = [(parser.prog, parser.format_help())]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                helps += command_help(sub)
    return helps


def argparse_help(target: str) -> str:
    """Markdown of the help of a command line, one section per (sub)command.

    Args:
        target: ``module:function`` returning an :class:`argparse.ArgumentParser`

    Returns:
        A ``##`` section with a ``text`` block per command.

    Raises:
        PluginError: If *target* does not give a parser.
    """
    module, function = target.split(":")
    parser = getattr(importlib.import_module(module), function)()
    if not isinstance(parser, argparse.ArgumentParser):
        raise PluginError(f"{target}() returned {type(parser).__name__}, not a parser")
    sections = []
    for prog, text in command_help(parser):
        anchor = prog.replace(" ", "-")
        sections.append(f"## `{prog}` {{#{anchor}}}\n\n```text\n{text.rstrip()}\n```\n")
    return "\n".join(sections)


def bibtex(citation: dict[str, Any]) -> str:
    """BibTeX entries of the paper and of the software from CITATION.cff.

    Args:
        citation: parsed CITATION.cff

    Returns:
        Markdown with two fenced ``bibtex`` blocks.
    """

    def names(authors: list[dict[str, str]]) -> str:
        out = []
        for a in authors:
            if "family-names" in a:
                out.append(
                    f"{a['family-names']}, {a.get('given-names', '')}".strip(", ")
                )
            else:
                out.append("{" + a["name"] + "}")
        return " and ".join(out)

    paper = citation["preferred-citation"]
    eprint = ""
    for ident in paper.get("identifiers", []):
        value = str(ident.get("value", ""))
        if value.lower().startswith("arxiv:"):
            eprint = value.split(":", 1)[1]
    first = paper["authors"][0].get("family-names", "paper").lower()
    paper_lines = [
        f"@article{{{first}{paper['year']},",
        f"  title         = {{{paper['title']}}},",
        f"  author        = {{{names(paper['authors'])}}},",
        f"  journal       = {{{paper.get('journal', '')}}},",
        f"  year          = {{{paper['year']}}},",
    ]
    if eprint:
        paper_lines += [
            f"  eprint        = {{{eprint}}},",
            "  archivePrefix = {arXiv},",
        ]
    paper_lines += [f"  url           = {{{paper['url']}}}", "}"]
    released = str(citation.get("date-released", ""))
    software_lines = [
        "@software{torchgeo_quake,",
        f"  title   = {{{citation['title']}}},",
        f"  author  = {{{names(citation['authors'])}}},",
        f"  version = {{{citation['version']}}},",
    ]
    if released:
        software_lines.append(f"  year    = {{{released[:4]}}},")
    software_lines += [f"  license = {{{citation.get('license', '')}}}", "}"]
    return (
        "The paper:\n\n```bibtex\n"
        + "\n".join(paper_lines)
        + "\n```\n\nThe software:\n\n```bibtex\n"
        + "\n".join(software_lines)
        + "\n```\n"
    )


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """Expand the ``api``, ``argparse`` and ``citation-bibtex`` markers of a page.

    Args:
        markdown: page source
        **kwargs: MkDocs hook arguments (unused)

    Returns:
        The expanded page source.
    """
    page = kwargs.get("page")
    where = page.file.src_path if page is not None else "a page"
    for match in _SNIPPET.finditer(markdown):
        if not (ROOT / match["path"]).exists():
            raise PluginError(
                f"{where} includes {match['path']}, which does not exist. The site "
                "shows that file verbatim: create it (or remove the include)."
            )
    markdown = _API.sub(lambda m: api_blocks(m["args"]), markdown)
    markdown = _ARGPARSE.sub(lambda m: argparse_help(m["target"]), markdown)
    if _BIBTEX in markdown:
        citation = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
        markdown = markdown.replace(_BIBTEX, bibtex(citation))
    return markdown
