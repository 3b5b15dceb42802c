"""The two backends of the upstream API doc (tests/upstream/, unchanged but for
`from strands_backend import ...`) run against the real broker and real
WebSocket clients. The port literal 8081 is swapped for the broker's free port."""

import asyncio
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from broker_process import BrokerProcess, die_with_parent
from wsclient import WebSocket

UPSTREAM = Path(__file__).parent / "upstream"
PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def start_backend(name: str, broker: BrokerProcess, tmp_path: Path) -> subprocess.Popen:
    source = (UPSTREAM / name).read_text()
    assert source.count("8081") == 1 and source.count("strands_backend") == 1
    script = tmp_path / name
    script.write_text(source.replace("8081", str(broker.tcp_port)))
    mark = broker.mark()
    process = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env={"PYTHONPATH": str(PACKAGE_ROOT)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=die_with_parent)
    try:
        broker.wait_log("backend connected", mark)
    except AssertionError:
        process.kill()
        raise AssertionError(f"{name} did not connect: {process.communicate()}") from None
    return process


def stop_with_ctrl_c(process: subprocess.Popen, broker: BrokerProcess) -> str:
    mark = broker.mark()
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=10)
    # A backend stopped while broker events wait unread in its socket resets the link instead of closing it.
    broker.wait_log(("backend disconnected", "backend dropped after a socket error"), mark)
    return stderr.decode()


async def test_the_relay_backend_relays_within_a_room(broker, tmp_path):
    backend = start_backend("relay_backend.py", broker, tmp_path)
    try:
        alice = await WebSocket.connect(broker.ws_port, "/ws/r1")
        bob = await WebSocket.connect(broker.ws_port, "/ws/r1")
        carol = await WebSocket.connect(broker.ws_port, "/ws/r2")
        await alice.send("hi ✓")
        relayed = await alice.recv()
        assert re.fullmatch(r"[0-9a-f-]{36}: hi ✓", relayed)
        assert await bob.recv() == relayed
        await carol.send("yo")
        assert (await carol.recv()).endswith(": yo")  # alice's line never reached room r2
        for ws in (alice, bob, carol):
            await ws.close()
    finally:
        stderr = stop_with_ctrl_c(backend, broker)
    assert "KeyboardInterrupt" in stderr and backend.returncode != 0


async def test_the_echo_backend_echoes_to_the_sender(broker, tmp_path):
    backend = start_backend("echo_backend.py", broker, tmp_path)
    try:
        ws = await WebSocket.connect(broker.ws_port, "/ws", headers={"User-Agent": "pytest"})
        other = await WebSocket.connect(broker.ws_port, "/ws")
        for text in ("ping", "ünïcödé ✓ 😀", "x" * 200_000):
            await ws.send(text)
            assert await ws.recv() == text
        await other.send("mine")
        assert await other.recv() == "mine"
        await ws.close()
        await other.close()
    finally:
        stderr = stop_with_ctrl_c(backend, broker)
    assert "KeyboardInterrupt" in stderr


@pytest.mark.parametrize("name", ["relay_backend.py", "echo_backend.py"])
def test_the_backends_differ_from_upstream_only_in_the_import(name):
    source = (UPSTREAM / name).read_text()
    assert source.startswith("from strands_backend import ")
    assert "pystrands" not in source
