"""The one exception the engine raises: a ruleset document that cannot be compiled."""


class RulesetError(ValueError):
    """A ruleset document is invalid; ``code`` is stable, ``path`` names the offending member."""

    def __init__(self, code: str, path: str, message: str) -> None:
        self.code = code
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)
