"""Field-mapping helpers for `add_edge` / `connect`, and the check of the producer's side.

Connecting many same-named fields by hand means writing `{"query": "query", "docs": "docs"}`.
Two helpers build those dicts:

- `identity_mapping("query", "docs")` maps each field to the parameter of the same name;
- `prefix_mapping("ctx_", "query", "docs")` maps `query -> ctx_query`, `docs -> ctx_docs`.

With field names they return plain dicts (so they combine with `{**a, **b}`). Without any,
they return a `MatchingFields` placeholder that `add_edge` resolves against the two
nodes: every field the producer *declares* whose (prefixed) name the consumer takes.

**Declared outputs.** A producer declares its fields with its return annotation: a
`TypedDict`, a dataclass or a `NamedTuple` (`def retrieve(query) -> Retrieved`). When it does, every mapping into or out of it is
checked when the edge is added, so a misspelt field is an error at build time naming the
fields it does return, rather than a failure at run time. An unannotated producer (or one
returning `dict`) declares nothing, and its fields are checked when it runs.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._errors import FieldMappingError

if TYPE_CHECKING:
    from ._graph import Node

__all__ = ["MatchingFields", "declared_fields", "identity_mapping", "prefix_mapping"]

_WHOLE_OUTPUT = "*"


@dataclasses.dataclass(frozen=True)
class MatchingFields:
    """Map every field the producer declares to the consumer parameter `prefix + field`.

    Made by `identity_mapping()` and `prefix_mapping(prefix)` without field names;
    `add_edge` resolves it against the two nodes (see the module docstring).
    """

    prefix: str = ""

    def resolve(self, src: Node, dst: Node) -> dict[str, str]:
        helper = f"prefix_mapping({self.prefix!r})" if self.prefix else "identity_mapping()"
        example = (
            f"prefix_mapping({self.prefix!r}, 'field', ...)"
            if self.prefix
            else ("identity_mapping('field', ...)")
        )
        fields = declared_fields(src)
        if fields is None:
            raise FieldMappingError(
                f"edge {src.node_id} -> {dst.node_id}: {helper} without field names needs "
                f"the fields {src.node_id} ({src.name}) returns, and its return annotation "
                f"declares none; name them, e.g. {example}, or annotate "
                "it with a TypedDict or dataclass"
            )
        params = set(dst.parameter_names())
        matched = {f: self.prefix + f for f in fields if self.prefix + f in params}
        if not matched:
            raise FieldMappingError(
                f"edge {src.node_id} -> {dst.node_id}: {helper} matched nothing: "
                f"{src.node_id} returns ({', '.join(fields) or 'no fields'}) and "
                f"{dst.node_id} ({dst.name}) takes ({', '.join(sorted(params)) or 'nothing'}); "
                f"name the fields, e.g. {example}"
            )
        return matched


def identity_mapping(*fields: str) -> Any:
    """Map each field to the consumer parameter of the same name.

    `identity_mapping("query", "docs")` is `{"query": "query", "docs": "docs"}`. Without
    names, every field the producer declares that the consumer takes (see the module
    docstring).

    !!! example
        ```python
        from typing import TypedDict

        class Found(TypedDict):
            docs: list[str]
            query: str

        def retrieve(question: str) -> Found:
            return {"docs": ["a", "bb"], "query": question}

        g = xcs.Graph()
        g.add_node(retrieve, node_id="retrieve")
        g.add_node(lambda docs, query: f"{query}: {max(docs, key=len)}", node_id="rank")
        g.connect("retrieve", "rank", field_mappings=xcs.identity_mapping())  # both fields
        assert xcs.identity_mapping("docs") == {"docs": "docs"}
        assert xcs.execute_graph(g, {"question": "q"}) == {"rank": "q: bb"}
        ```
    """
    return prefix_mapping("", *fields)


def prefix_mapping(prefix: str, *fields: str) -> Any:
    """Map each field `f` to the consumer parameter `prefix + f`.

    `prefix_mapping("ctx_", "query", "docs")` is `{"query": "ctx_query", "docs":
    "ctx_docs"}`. Without names, every field `f` the producer declares for which the
    consumer takes `prefix + f`.
    """
    if not isinstance(prefix, str):
        raise FieldMappingError(f"prefix_mapping() needs a str prefix, got {prefix!r}")
    bad = [f for f in fields if not isinstance(f, str) or not f]
    if bad:
        raise FieldMappingError(
            f"field names must be non-empty strings, got {', '.join(map(repr, bad))}"
        )
    if not fields:
        return MatchingFields(prefix)
    return {field: prefix + field for field in fields}


def resolve_field_mappings(src: Node, dst: Node, mappings: Any) -> dict[str, str] | None:
    """What `add_edge` stores: a helper resolved, then every field checked against the
    producer's declared outputs (the consumer's parameters are checked by the graph)."""
    if mappings is None:
        return None
    if isinstance(mappings, MatchingFields):
        return mappings.resolve(src, dst)
    if not isinstance(mappings, Mapping):
        raise FieldMappingError(
            f"edge {src.node_id} -> {dst.node_id}: field_mappings must be a dict "
            f"{{output_field: parameter}}, got {type(mappings).__name__} {mappings!r}; e.g. "
            "field_mappings={'docs': 'documents'}, or {'*': 'documents'} for the whole output"
        )
    mappings = dict(mappings)
    fields = declared_fields(src)
    if fields is not None:
        annotation = _return_annotation(src)
        unknown = [
            f
            for f in mappings
            if isinstance(f, str)
            and f != _WHOLE_OUTPUT
            and f not in fields
            # an attribute of a dataclass or NamedTuple (a property) is a field too
            and not (isinstance(annotation, type) and hasattr(annotation, f))
        ]
        if unknown:
            raise FieldMappingError(
                f"edge {src.node_id} -> {dst.node_id} maps field(s) "
                f"{', '.join(map(repr, unknown))}, but {src.node_id} ({src.name}) declares "
                f"its output fields as ({', '.join(fields)}); map one of those or '*' for "
                "the whole output"
            )
    return mappings


# --- declared outputs ---------------------------------------------------------------


def declared_fields(node: Node) -> tuple[str, ...] | None:
    """The output fields `node`'s operator declares in its return annotation, or `None`."""
    annotation = _return_annotation(node)
    if not isinstance(annotation, type):
        return None
    if typing.is_typeddict(annotation):
        return tuple(annotation.__annotations__)  # in order, with inherited keys
    if dataclasses.is_dataclass(annotation):
        return tuple(f.name for f in dataclasses.fields(annotation))
    if issubclass(annotation, tuple) and hasattr(annotation, "_fields"):  # NamedTuple
        return tuple(annotation._fields)
    return None


def _return_annotation(node: Node) -> Any:
    operator = node.operator
    target = vars(operator).get("__wrapped__") or type(operator).forward
    try:
        return typing.get_type_hints(target).get("return")
    except Exception:  # a string annotation naming something undefined, or a C callable
        return None
