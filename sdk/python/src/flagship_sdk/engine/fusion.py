"""Fusing a rule's conditions into one Python function.

A rule's conditions (its own and its segments') all have to hold. Calling one closure per condition
costs a Python frame each; instead the rule gets one generated function that tests each condition's
common case inline - a string attribute against a set, a prefix or a suffix, an integer against a
bound - and falls back to the condition's general predicate for every other value. The generated
source holds only fixed snippets and numbered names: attribute names and values are bound in the
function's namespace, never written into the source, so no document can inject code.
"""

from __future__ import annotations

from collections.abc import Sequence

from .conditions import Condition, Context, Predicate


def fuse(conditions: Sequence[Condition]) -> Predicate | None:
    """Return one predicate that holds when every condition holds (``None``: no conditions)."""
    if not conditions:
        return None
    if len(conditions) == 1 and not conditions[0].inlines:
        return conditions[0].predicate
    namespace: dict[str, object] = {}
    lines = ["def match(context):", "    get = context.get"]
    for index, condition in enumerate(conditions):
        namespace[f"p{index}"] = condition.predicate
        if not condition.inlines:
            lines.append(f"    if not p{index}(context): return False")
            continue
        namespace[f"a{index}"] = condition.attribute
        namespace[f"k{index}"] = condition.constant
        lines.append(f"    v = get(a{index})")
        for alternative, (kind, inline) in enumerate(condition.inlines):
            namespace[f"t{index}_{alternative}"] = kind
            expression = inline.format(k=f"k{index}")
            fails = f"({expression})" if condition.flip else f"not ({expression})"
            keyword = "if" if alternative == 0 else "elif"
            lines += [
                f"    {keyword} type(v) is t{index}_{alternative}:",
                f"        if {fails}: return False",
            ]
        lines.append(f"    elif not p{index}(context): return False")
    lines.append("    return True")
    code = compile("\n".join(lines), "<flagship-rule>", "exec")
    exec(code, namespace)  # noqa: S102  # fixed snippets and numbered names only, see above
    match: Predicate = namespace["match"]  # type: ignore[assignment]  # defined by the code above
    return match


def check(conditions: Sequence[Condition], context: Context) -> bool:
    """Evaluate the conditions one by one, unfused: the reference the fused function must equal."""
    return all(condition.predicate(context) for condition in conditions)
