import subprocess
from pathlib import Path
from typing import AsyncIterator, Iterator

import pytest

from broker_process import BrokerProcess
from fake_broker import FakeBroker


@pytest.fixture
async def fake() -> AsyncIterator[FakeBroker]:
    broker = await FakeBroker().start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def broker() -> Iterator[BrokerProcess]:
    """One real broker with default settings for the run; tests wait on its log after a mark."""
    process = BrokerProcess()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-signed certificate for localhost and 127.0.0.1 (cert.pem, key.pem in the returned folder)."""
    folder = tmp_path_factory.mktemp("tls")
    try:
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem"),
             "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
            check=True, capture_output=True, timeout=60,
        )
    except FileNotFoundError:
        raise RuntimeError("the TLS tests need the `openssl` command (Debian: apt-get install openssl)") from None
    return folder
