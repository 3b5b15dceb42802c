"""The real strands broker as a child process on free ports (like test/helpers/spawn-broker.ts)."""

import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

REPO_ROOT = Path(__file__).resolve().parents[2]
MAIN_JS = REPO_ROOT / "dist" / "src" / "main.js"


def node() -> str:
    path = shutil.which("node")
    if path is None:
        raise RuntimeError("the broker tests need `node` on PATH")
    if not MAIN_JS.exists():
        raise RuntimeError(f"{MAIN_JS} is missing: build the broker first (npx tsc -p tsconfig.json; npm test does)")
    return path


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


class BrokerProcess:
    """Starts `node dist/src/main.js` with ports 0 and `args`, without any
    STRANDS_*/PYSTRAND_* environment; keeps every stdout log line."""

    def __init__(self, *args: str, tcp_port: int = 0) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("STRANDS_", "PYSTRAND_"))}
        command = [node(), str(MAIN_JS), "--host", "127.0.0.1", "--ws-port", "0", "--tcp-port", str(tcp_port), "--log-level", "info", *args]
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._lines: List[Dict[str, Any]] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._collect, daemon=True).start()
        listening = self.wait_log("strands broker listening", 0)
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

    def wait_log(self, text: str, after: int, timeout: float = 10.0) -> Dict[str, Any]:
        """The first log line after `after` whose msg contains `text`."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self._lines[after:]:
                    if text in str(line.get("msg", "")):
                        return line
                remaining = deadline - time.monotonic()
                if self.process.poll() is not None or remaining <= 0:
                    stderr = self.process.stderr.read().decode() if self.process.poll() is not None and self.process.stderr else ""
                    raise AssertionError(f"no broker log line with {text!r} (exit {self.process.poll()}): {self._lines[after:]} {stderr}")
                self._changed.wait(remaining)

    def count_logs(self, text: str, after: int = 0) -> int:
        with self._changed:
            return sum(1 for line in self._lines[after:] if text in str(line.get("msg", "")))

    def stop(self) -> Optional[int]:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        return self.process.returncode
