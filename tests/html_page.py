"""Reading a generated HTML page in tests: its tags with their attributes, and its text."""
from __future__ import annotations

from html.parser import HTMLParser


class Page(HTMLParser):
    """What a report's HTML holds: tags with attributes, and its text."""

    def __init__(self, html: str):
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    handle_startendtag = handle_starttag

    def handle_data(self, data):
        self.text.append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        """Tags with these attributes (``class_`` matches one class, ``http_equiv`` is ``http-equiv``)."""
        def match(a: dict[str, str], key: str, value: str) -> bool:
            key = key.rstrip("_").replace("_", "-")
            return value in a.get(key, "").split() if key == "class" else a.get(key) == value

        return [a for t, a in self.tags if t == tag and all(match(a, k, v) for k, v in attrs.items())]

    @property
    def words(self) -> str:
        return " ".join(" ".join(self.text).split())
