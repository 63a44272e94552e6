"""Limits that keep one GraphQL request from taking the server down. One place for each number."""

from typing import Any

from graphql import (
    ASTValidationRule,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
)

MAX_QUERY_CHARS = 100_000  # the query text
MAX_TOKENS = 20_000  # parser tokens: stops pathological documents before validation
MAX_DEPTH = 10  # nested fields below an operation (introspection fields are exempt)
MAX_ROOT_FIELDS = 50  # root fields of one operation, aliases included
MAX_ALIASES = 100  # aliased fields in the whole document
MAX_FIRST = 1000  # page size of any connection; also the page when `first` is omitted
MAX_IDS = 1000  # ids or external ids in one `factSheets` call

INTROSPECTION = ("__schema", "__type")


class LimitExceeded(Exception):
    """A request over one of the limits; rendered with errorType QUERY_LIMIT."""


def check_first(first: int | None) -> int:
    """The page size to use; refuses a negative or too large `first`."""
    if first is None:
        return MAX_FIRST
    if first < 0:
        raise LimitExceeded("`first` must not be negative")
    if first > MAX_FIRST:
        raise LimitExceeded(f"`first` is {first}; the largest page is {MAX_FIRST}")
    return first


def _depth(
    selection_set: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
    seen: frozenset[str] = frozenset(),
) -> int:
    if selection_set is None:
        return 0
    deepest = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if selection.name.value in INTROSPECTION:
                continue
            deepest = max(deepest, 1 + _depth(selection.selection_set, fragments, seen))
        elif isinstance(selection, InlineFragmentNode):
            deepest = max(deepest, _depth(selection.selection_set, fragments, seen))
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is not None and name not in seen:  # cycles are reported by the spec rules
                deepest = max(deepest, _depth(fragment.selection_set, fragments, seen | {name}))
    return deepest


def _root_fields(selection_set: SelectionSetNode, fragments: dict[str, Any]) -> int:
    count = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            count += 1
        elif isinstance(selection, InlineFragmentNode):
            count += _root_fields(selection.selection_set, fragments)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                count += _root_fields(fragment.selection_set, fragments)
    return count


class LimitsRule(ASTValidationRule):
    """Depth, root fields and aliases of the document, checked before anything runs."""

    def __init__(self, context: ValidationContext) -> None:
        super().__init__(context)
        document = context.document
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.aliases = 0

    def enter_field(self, node: FieldNode, *_: Any) -> None:
        if node.alias is not None:
            self.aliases += 1
            if self.aliases == MAX_ALIASES + 1:
                self._refuse(f"The query has more than {MAX_ALIASES} aliases", node)

    def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
        depth = _depth(node.selection_set, self.fragments)
        if depth > MAX_DEPTH:
            self._refuse(f"The query is {depth} levels deep; the limit is {MAX_DEPTH}", node)
        roots = _root_fields(node.selection_set, self.fragments)
        if roots > MAX_ROOT_FIELDS:
            self._refuse(
                f"The operation has {roots} root fields; the limit is {MAX_ROOT_FIELDS}", node
            )

    def _refuse(self, message: str, node: Any) -> None:
        self.report_error(GraphQLError(message, node, extensions={"errorType": "QUERY_LIMIT"}))
