"""Griffe extension: rewrite reStructuredText markup in docstrings as Markdown.

The package's docstrings follow TorchGeo's conventions: Google-style sections
(``Args:``, ``Returns:``, ...) with reStructuredText inline markup written for
Sphinx (``:class:`~pkg.Name```, ``.. versionadded:: 0.1``, ``Text::`` literal
blocks, simple ``====`` tables). mkdocstrings renders docstring text as Markdown,
where that markup would show up verbatim (and a ``====`` line would even turn the
line above it into a heading), so this extension rewrites it before rendering:

* ``:class:`~a.b.C``` and the other Python roles become code, linked to the API
  reference when the target is an object of ``torchgeo_quake`` (an *optional*
  autorefs link: objects that are not rendered on any page stay plain code and
  never fail the strict build); targets outside the package stay plain code;
* ``:term:`text``` becomes *text*, ``:math:`x``` becomes code;
* ```text <https://...>`_`` hyperlinks become Markdown links;
* ``.. versionadded:: X`` becomes a short "Added in version X" line;
* a paragraph ending in ``::`` loses one colon (the indented block after it is
  already a Markdown code block);
* reStructuredText simple tables become Markdown tables, and definition lists
  (a term line followed by an indented definition) Markdown definition lists.

Configured in ``mkdocs.yml`` under the Python handler's ``extensions``.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

PACKAGE = "torchgeo_quake"

_ROLE = re.compile(
    r":(?P<role>class|func|meth|attr|data|mod|obj|exc|const|term|math|ref):"
    r"`(?P<body>[^`]+)`"
)
_PY_ROLES = {"class", "func", "meth", "attr", "data", "mod", "obj", "exc", "const"}
_VERSION = re.compile(
    r"^(?P<indent>[ \t]*)\.\. (?P<kind>versionadded|versionchanged|deprecated)::"
    r"[ \t]*(?P<version>\S+)[ \t]*$",
    re.MULTILINE,
)
_TABLE_RULE = re.compile(r"^[ \t]*=+(?:[ \t]+=+)+[ \t]*$")


def _lookup(collection: Any, path: str) -> Any | None:
    """Return the Griffe object at a dotted *path*, or None.

    Args:
        collection: Griffe modules collection
        path: dotted path

    Returns:
        The object, or None when it does not exist or cannot be resolved.
    """
    head, _, rest = path.partition(".")
    try:
        top = collection.members[head]
        obj = top[rest] if rest else top
        if getattr(obj, "is_alias", False):
            obj = obj.final_target
        return obj
    except Exception:
        return None


def _resolve(target: str, obj: Any, collection: Any) -> str | None:
    """Resolve a Sphinx role target seen in the docstring of *obj*.

    Args:
        target: the target as written (``Name``, ``.mod.Name`` or ``a.b.Name``)
        obj: the Griffe object whose docstring holds the role
        collection: Griffe modules collection

    Returns:
        The dotted path of a ``torchgeo_quake`` object, or None.
    """
    target = target.removesuffix("()")
    module = obj if obj.is_module else obj.module
    candidates: list[str] = []
    if target.startswith("."):
        # Relative to the current package: ".taxonomy.X" inside datasets.gem.
        package = module.path if module.is_package else module.path.rpartition(".")[0]
        level = len(target) - len(target.lstrip("."))
        for _ in range(level - 1):
            package = package.rpartition(".")[0]
        candidates.append(f"{package}.{target.lstrip('.')}")
    else:
        candidates.append(target)
        scope = obj
        while scope is not None:
            candidates.append(f"{scope.path}.{target}")
            scope = scope.parent
    for path in candidates:
        if not path.startswith(PACKAGE + ".") and path != PACKAGE:
            continue
        found = _lookup(collection, path)
        if found is not None:
            return str(found.path)
    return None


def convert_roles(text: str, obj: Any, collection: Any) -> str:
    """Rewrite reStructuredText roles as Markdown.

    Args:
        text: docstring text
        obj: the Griffe object the docstring belongs to
        collection: Griffe modules collection

    Returns:
        The text with roles replaced.
    """

    def replace(match: re.Match[str]) -> str:
        role, body = match["role"], match["body"]
        if role == "term":
            return f"*{body}*"
        if role in ("math", "ref"):
            return f"`{body}`"
        explicit = re.fullmatch(r"(?P<title>.+?)\s*<(?P<target>[^>]+)>", body)
        if explicit:
            title, target = explicit["title"], explicit["target"]
        else:
            target = body.lstrip("!")
            short = target.startswith("~")
            target = target.lstrip("~")
            title = target.rsplit(".", 1)[-1] if short else target.lstrip(".")
            if role in ("func", "meth") and not title.endswith(")"):
                title += "()"
        path = _resolve(target, obj, collection)
        code = f"<code>{title}</code>"
        if path is None:
            return f"`{title}`"
        return f'<autoref identifier="{path}" optional>{code}</autoref>'

    return _ROLE.sub(replace, text)


def convert_tables(text: str) -> str:
    """Rewrite reStructuredText simple tables as Markdown tables.

    A simple table is a rule of ``=`` groups, a header line, the same rule, body
    lines and a closing rule; a body line whose first column is blank continues
    the row above it.

    Args:
        text: docstring text

    Returns:
        The text with tables replaced.
    """
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        if not _TABLE_RULE.match(lines[i]):
            out.append(lines[i])
            i += 1
            continue
        rule = lines[i]
        # Column spans from the rule.
        spans = [(m.start(), m.end()) for m in re.finditer(r"=+", rule)]
        rules = [j for j in range(i, len(lines)) if lines[j].strip() == rule.strip()]
        if len(rules) < 3 or rules[1] != i + 2:
            out.append(lines[i])
            i += 1
            continue
        end = rules[2]

        def cells(line: str, spans: list[tuple[int, int]] = spans) -> list[str]:
            result = []
            for k, (start, stop) in enumerate(spans):
                stop = len(line) if k == len(spans) - 1 else spans[k + 1][0]
                result.append(line[start:stop].strip())
            return result

        header = cells(lines[i + 1])
        rows: list[list[str]] = []
        for line in lines[i + 3 : end]:
            if not line.strip():
                continue
            row = cells(line)
            if rows and not row[0]:
                rows[-1] = [
                    f"{a} {b}".strip() for a, b in zip(rows[-1], row, strict=True)
                ]
            else:
                rows.append(row)
        indent = rule[: len(rule) - len(rule.lstrip())]
        out.append(indent + "| " + " | ".join(header) + " |")
        out.append(indent + "|" + "|".join("---" for _ in header) + "|")
        for row in rows:
            out.append(
                indent + "| " + " | ".join(c.replace("|", "\\|") for c in row) + " |"
            )
        i = end + 1
    return "\n".join(out)


_NOT_A_TERM = re.compile(r"^([*+|#>-]|\d+\.|\.\. |```)")


def convert_definitions(text: str) -> str:
    """Rewrite reStructuredText definition lists for Markdown's ``def_list``.

    A term is an unindented line, after a blank line, that does not end with a
    colon (Google section titles and literal-block introductions do), followed by
    a line indented by four spaces: its definition.

    Args:
        text: docstring text

    Returns:
        The text with ``:   `` before the first line of each definition.
    """
    lines = text.split("\n")
    for i in range(len(lines) - 1):
        term, body = lines[i], lines[i + 1]
        if (
            term.strip()
            and not term[0].isspace()
            and not term.rstrip().endswith(":")
            and not _NOT_A_TERM.match(term)
            and (i == 0 or not lines[i - 1].strip())
            and body.startswith("    ")
            and body[4:5].strip()
        ):
            lines[i + 1] = ":   " + body[4:]
    return "\n".join(lines)


def convert(text: str, obj: Any, collection: Any) -> str:
    """Rewrite all supported reStructuredText markup in a docstring.

    Args:
        text: docstring text
        obj: the Griffe object the docstring belongs to
        collection: Griffe modules collection

    Returns:
        Markdown text.
    """
    words = {
        "versionadded": "Added in version",
        "versionchanged": "Changed in version",
        "deprecated": "Deprecated since version",
    }
    text = _VERSION.sub(
        lambda m: f"{m['indent']}*{words[m['kind']]} {m['version']}.*", text
    )
    # "Text::" introduces a literal block; in Markdown the indented block is
    # already code, so keep a single colon (" ::" alone disappears).
    text = re.sub(r"[ \t]+::[ \t]*$", "", text, flags=re.MULTILINE)
    text = re.sub(r"(\S)::[ \t]*$", r"\1:", text, flags=re.MULTILINE)
    text = convert_tables(text)
    text = convert_definitions(text)
    # `text <https://...>`_ hyperlinks.
    text = re.sub(r"`([^`<]+?)\s*<(https?://[^>]+)>`__?", r"[\1](\2)", text)
    return convert_roles(text, obj, collection)


def comment_docstring(obj: Any) -> str | None:
    """Sphinx ``#:`` comment lines right above an attribute assignment.

    Args:
        obj: Griffe attribute

    Returns:
        The comment text, or None when there is none.
    """
    try:
        lines = obj.module.lines
    except Exception:
        return None
    if not obj.lineno or not lines:
        return None
    found: list[str] = []
    index = obj.lineno - 2
    while index >= 0 and lines[index].strip().startswith("#:"):
        found.append(lines[index].strip()[2:].strip())
        index -= 1
    return "\n".join(reversed(found)) or None


class RstToMarkdown(griffe.Extension):
    """Rewrite the reStructuredText markup of ``torchgeo_quake`` docstrings."""

    def on_object(self, *, obj: Any, loader: Any, **kwargs: Any) -> None:
        """Convert the docstring of one object once the tree is complete.

        Args:
            obj: Griffe object
            loader: Griffe loader
            **kwargs: unused
        """
        if obj.is_alias or not obj.path.startswith(PACKAGE):
            return
        if obj.is_attribute and obj.value is not None and len(str(obj.value)) > 300:
            # Long values (tables of specifications) would swamp the page.
            obj.value = None
        if obj.docstring is None and obj.is_attribute:
            text = comment_docstring(obj)
            if text:
                obj.docstring = griffe.Docstring(text, lineno=obj.lineno, parent=obj)
        if obj.docstring is None:
            return
        obj.docstring.value = convert(
            obj.docstring.value, obj, loader.modules_collection
        )
