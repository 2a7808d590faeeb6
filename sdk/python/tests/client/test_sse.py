"""The SSE parser, per the WHATWG rules."""

from __future__ import annotations

from flagship_sdk.client.sse import SSEEvent, SSEParser


def parse(*chunks: bytes) -> tuple[list[SSEEvent], SSEParser]:
    parser = SSEParser()
    events = [event for chunk in chunks for event in parser.feed(chunk)]
    return events, parser


def test_fields_comments_and_multiline_data() -> None:
    events, parser = parse(
        b"\xef\xbb\xbfretry: 3000\n\n: ping\n\nid: 42\nevent: ruleset\n"
        b'data: {"version": 42}\n\ndata:a\ndata: b\ndata\n\n'
    )
    assert events == [
        SSEEvent("ruleset", '{"version": 42}', "42"),
        SSEEvent("message", "a\nb\n", "42"),
    ]
    assert parser.retry == 3000


def test_line_endings_split_across_chunks() -> None:
    events, _ = parse(b"data: one\r", b"\n\r", b"\ndata: two\r\rdata: three\r\n\r\n")
    assert [e.data for e in events] == ["one", "two", "three"]


def test_event_without_data_is_not_dispatched_and_type_resets() -> None:
    events, _ = parse(b"event: ruleset\n\ndata: x\n\n")
    assert events == [SSEEvent("message", "x", "")]


def test_ignored_fields() -> None:
    events, parser = parse(b"id: a\x00b\nretry: soon\nretry:\nfoo: bar\ndata: x\n\n")
    assert events == [SSEEvent("message", "x", "")]
    assert parser.retry is None


def test_incomplete_event_is_not_dispatched() -> None:
    events, parser = parse(b"data: partial\n", b"data: more")
    assert events == []
    assert parser.received_bytes == 24


def test_id_persists_and_can_be_reset() -> None:
    events, parser = parse(b"id: 1\ndata: a\n\ndata: b\n\nid\ndata: c\n\n")
    assert [e.id for e in events] == ["1", "1", ""]
    assert parser.last_event_id == ""
