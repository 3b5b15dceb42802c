"""Lines, data objects and settings, without a socket."""

import json
import math

import pytest

from strands_backend import AsyncPyStrandsClient, ConnectionRequestContext, Context, PyStrands, PyStrandsClient
from strands_backend._settings import make_settings
from strands_backend._wire import LineSplitter, disconnect_params, encode_line, exclude_param, message_params, parse_line, to_event
from strands_backend.errors import ProtocolError
from strands_backend.types import MessageEvent


def test_a_character_cut_by_read_edges_is_decoded_whole():
    text = "é€😀 naïve"
    raw = json.dumps({"action": "new_message", "params": {"message": text, "context": {}}}, ensure_ascii=False).encode("utf-8") + b"\n"
    splitter = LineSplitter(1 << 20)
    lines = []
    for i in range(len(raw)):  # one byte per read: every multi-byte character is cut
        got, dropped = splitter.feed(raw[i:i + 1])
        assert dropped == 0
        lines += got
    assert len(lines) == 1
    event = to_event(*parse_line(lines[0]))
    assert isinstance(event, MessageEvent) and event.message == text


def test_lines_split_on_newlines_drop_cr_and_skip_blanks():
    splitter = LineSplitter(1024)
    assert splitter.feed(b'{"a":1}\r\n\n{"b"') == ([b'{"a":1}'], 0)
    assert splitter.feed(b':2}\n{"c":3}\n') == ([b'{"b":2}', b'{"c":3}'], 0)


def test_a_line_over_max_line_is_dropped_and_the_next_one_kept():
    splitter = LineSplitter(1024)
    assert splitter.feed(b"x" * 700) == ([], 0)
    assert splitter.feed(b"x" * 700) == ([], 0)  # now past max_line: held no longer
    assert splitter.feed(b"x" * 10 + b"\nok\n") == ([b"ok"], 1)
    assert splitter.feed(b"y" * 1025 + b"\nfine\n") == ([b"fine"], 1)
    assert splitter.feed(b"z" * 1024 + b"\r\n") == ([b"z" * 1024], 0)


def test_broker_lines_that_are_not_envelopes_are_protocol_errors():
    for bad in (b"not json", b"[1,2]", b'{"params":{}}', b"\xff\xfe"):
        with pytest.raises(ProtocolError):
            parse_line(bad)
    with pytest.raises(ProtocolError):
        to_event(*parse_line(b'{"action":"new_message","params":{"message":"!!!","binary":true,"context":{}}}'))
    with pytest.raises(ProtocolError):
        to_event(*parse_line(b'{"action":"connection_request","params":{}}'))
    assert to_event(*parse_line(b'{"request_id":"heartbeat","action":"heartbeat","params":{}}')) is None
    assert to_event(*parse_line(b'{"action":"something_new"}')) is None


def test_lines_are_ascii_json_keyed_action_request_id_params_then_ack():
    assert encode_line("broadcast", "r1", {"message": "é😀"}) == b'{"action": "broadcast", "request_id": "r1", "params": {"message": "\\u00e9\\ud83d\\ude00"}}\n'
    assert encode_line("join_room", "r2", {"conn_id": "a", "room_id": "b"}, ack=True) == b'{"action": "join_room", "request_id": "r2", "params": {"conn_id": "a", "room_id": "b"}, "ack": true}\n'
    with pytest.raises(ValueError):
        encode_line("response", "r3", {"metadata": {"x": math.nan}})


def test_send_params_are_checked():
    assert message_params("hi") == {"message": "hi"}
    assert message_params(b"\x00\xff") == {"message": "AP8=", "binary": True}
    assert message_params(bytearray(b"ab")) == {"message": "YWI=", "binary": True}
    with pytest.raises(TypeError):
        message_params(42)
    assert exclude_param("a") == "a"
    assert exclude_param(("a", "b")) == ["a", "b"]
    assert exclude_param([]) is None
    with pytest.raises(ValueError):
        exclude_param([str(i) for i in range(1001)])
    with pytest.raises(TypeError):
        exclude_param(["a", 1])
    assert disconnect_params("c", 4999, "é" * 61) == {"conn_id": "c", "code": 4999, "reason": "é" * 61}
    for code in (999, 1001, 3999, 5000, True, "1000"):
        with pytest.raises(ValueError):
            disconnect_params("c", code, "")
    with pytest.raises(ValueError):
        disconnect_params("c", 1000, "é" * 62)  # 124 UTF-8 bytes
    with pytest.raises(TypeError):
        disconnect_params(7, 1000, "")


def test_context_and_connection_request_round_trip_and_tolerate_junk():
    context = Context.from_json({"client_id": "c", "room_id": "r", "metadata": {"k": 1}})
    assert context == Context("c", "r", {"k": 1})
    assert context.to_json() == {"client_id": "c", "room_id": "r", "metadata": {"k": 1}}
    assert Context.from_json({}) == Context("", "", {})
    request = ConnectionRequestContext.from_json({
        "headers": {"User-Agent": ["ua"], "X-Bad": "not a list", 3: ["x"]},
        "url": "/ws/a",
        "remote_addr": "1.2.3.4",
        "query": "token=s%20t&x=1&x=2",
    })
    assert request.headers == {"User-Agent": ["ua"]}
    assert request.header("user-agent") == "ua" and request.header("missing") is None
    assert request.query_param("token") == "s t" and request.query_params["x"] == ["1", "2"]
    assert request.accepted is False and request.context == Context()
    assert ConnectionRequestContext.from_json(request.to_json()) == request


def settings(**changes):
    arguments = dict(host="localhost", port=8081, auto_reconnect=True, reconnect_delay=1.0, max_reconnect_delay=30.0, reconnect_backoff=2.0,
                     max_reconnect_attempts=None, token=None, ssl=None, cafile=None, server_hostname=None, heartbeat_timeout=45.0,
                     connect_timeout=10.0, request_timeout=10.0, send_buffer_size=1024, max_line=1 << 20, max_pending_events=10, handler_threads=None)
    arguments.update(changes)
    return make_settings(**arguments)


def test_reconnect_waits_are_full_jitter_capped_at_the_maximum():
    s = settings(reconnect_delay=1.0, reconnect_backoff=2.0, max_reconnect_delay=30.0)
    for failures, ceiling in ((0, 1.0), (1, 2.0), (3, 8.0), (5, 30.0), (10_000, 30.0)):
        waits = [s.reconnect_wait(failures) for _ in range(300)]
        assert all(0 <= w <= ceiling for w in waits)
        # spread over the whole range, not clustered at the ceiling (odds of failing by chance: 2**-300)
        assert min(waits) < ceiling / 2 < max(waits)


def test_bad_settings_are_refused_with_the_setting_named():
    for changes, error in (
        ({"port": 0}, ValueError), ({"port": 70000}, ValueError), ({"port": "8081"}, TypeError), ({"host": ""}, TypeError),
        ({"reconnect_delay": 0}, ValueError), ({"reconnect_backoff": 0.5}, ValueError), ({"max_reconnect_delay": 0.5}, ValueError),
        ({"max_reconnect_attempts": 0}, ValueError), ({"heartbeat_timeout": 0}, ValueError), ({"request_timeout": math.nan}, TypeError),
        ({"token": 5}, TypeError), ({"server_hostname": "x"}, ValueError), ({"ssl": "yes"}, TypeError), ({"max_pending_events": 0}, ValueError),
    ):
        with pytest.raises(error) as info:
            settings(**changes)
        assert next(iter(changes)) in str(info.value)


@pytest.mark.parametrize("cls", [PyStrands, PyStrandsClient, AsyncPyStrandsClient])
def test_upstream_constructor_arguments_and_defaults(cls):
    client = cls("example.org", 9000, False, 0.5, 5.0, 3.0)
    s = client.settings
    assert (s.host, s.port, s.auto_reconnect, s.reconnect_delay, s.max_reconnect_delay, s.reconnect_backoff) == ("example.org", 9000, False, 0.5, 5.0, 3.0)
    d = cls().settings
    assert (d.host, d.port, d.auto_reconnect, d.reconnect_delay, d.max_reconnect_delay, d.reconnect_backoff) == ("localhost", 8081, True, 1.0, 30.0, 2.0)
    assert cls(port=8081, auto_reconnect=True, reconnect_delay=1.0, max_reconnect_delay=30.0, reconnect_backoff=2.0).connected is False
