"""The one exception the engine raises: a ruleset document that cannot be compiled."""

import json


class RulesetError(ValueError):
    """A ruleset document is invalid; ``code`` is stable, ``path`` names the offending member."""

    def __init__(self, code: str, path: str, message: str) -> None:
        self.code = code
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


def key_path(parent: str, key: str) -> str:
    """Path of a user-chosen key (flag, segment, variant) under ``parent``."""
    return f"{parent}[{json.dumps(key, ensure_ascii=False)}]"
