"""The real strands broker as a child process on free ports (like test/helpers/spawn-broker.ts)."""

import ctypes
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

REPO_ROOT = Path(__file__).resolve().parents[2]
MAIN_JS = REPO_ROOT / "dist" / "src" / "main.js"
PR_SET_PDEATHSIG = 1
# Starting node takes well under a second on an idle machine, but tens of seconds on the shared, overloaded one.
STARTUP_TIMEOUT = 60.0


def node() -> str:
    path = shutil.which("node")
    if path is None:
        raise RuntimeError("the broker tests need `node` on PATH")
    if not MAIN_JS.exists():
        raise RuntimeError(f"{MAIN_JS} is missing: build the broker first (npx tsc -p tsconfig.json; npm test does)")
    return path


def die_with_parent() -> None:
    """In the child: SIGTERM it when the test run that started it dies, even by SIGKILL."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


class BrokerProcess:
    """Starts `node dist/src/main.js` with ports 0 and `args`, without any
    STRANDS_*/PYSTRAND_* environment; keeps every stdout log line."""

    def __init__(self, *args: str, tcp_port: int = 0) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("STRANDS_", "PYSTRAND_"))}
        command = [node(), str(MAIN_JS), "--host", "127.0.0.1", "--ws-port", "0", "--tcp-port", str(tcp_port), "--log-level", "info", *args]
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=die_with_parent)
        self._lines: List[Dict[str, Any]] = []
        self._changed = threading.Condition()
        self._collector = threading.Thread(target=self._collect, daemon=True)
        self._collector.start()
        try:
            listening = self.wait_log("strands broker listening", 0, STARTUP_TIMEOUT)
        except BaseException:
            self.stop()
            raise
        self.ws_port = _port(listening["ws"])
        self.tcp_port = _port(listening["tcp"])

    def _collect(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            try:
                line = json.loads(raw)
            except ValueError:
                line = {"raw": raw.decode("utf-8", "replace")}
            with self._changed:
                self._lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def mark(self) -> int:
        """Where the log is now: wait_log(text, mark) finds only lines after it."""
        with self._changed:
            return len(self._lines)

    def wait_log(self, text: Union[str, Tuple[str, ...]], after: int, timeout: float = 10.0) -> Dict[str, Any]:
        """The first log line after `after` whose msg contains `text` (or one of several)."""
        return self._lines[self.wait_index(text, after, timeout)]

    def wait_index(self, text: Union[str, Tuple[str, ...]], after: int, timeout: float = 10.0) -> int:
        """Where that line is in the log."""
        texts = (text,) if isinstance(text, str) else text
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for index in range(after, len(self._lines)):
                    if any(t in str(self._lines[index].get("msg", "")) for t in texts):
                        return index
                remaining = deadline - time.monotonic()
                if self.process.poll() is not None or remaining <= 0:
                    stderr = self.process.stderr.read().decode() if self.process.poll() is not None and self.process.stderr else ""
                    raise AssertionError(f"no broker log line with {text!r} (exit {self.process.poll()}): {self._lines[after:]} {stderr}")
                self._changed.wait(remaining)

    def stop(self) -> Optional[int]:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._collector.join(5)  # it ends at the exited process's EOF; closing stdout under it would break its read
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        return self.process.returncode
