"""`vitrine broker config|run`: every option reaches the configuration, and run really runs."""

from __future__ import annotations

import getpass
import os
import signal
import subprocess
import sys
from pathlib import Path

from vitrine.broker import free_port, wait_for_port
from vitrine.cli import main


def test_config_takes_port_user_and_log_destination(tmp_path: Path, capsys) -> None:
    assert main(["broker", "config", "--data-dir", str(tmp_path), "--port", "1999",
                 "--tls-port", "0", "--user", "", "--log-dest", "file /tmp/b.log"]) == 0
    conf = capsys.readouterr().out
    assert "listener 1999 127.0.0.1" in conf
    assert f"\nuser {getpass.getuser()}\n" in conf and "8883" not in conf
    assert "log_dest file /tmp/b.log" in conf
    assert main(["broker", "config"]) == 0
    default = capsys.readouterr().out
    assert "user mosquitto" in default and "log_dest syslog" in default


def test_run_starts_mosquitto_on_the_rendered_config(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vitrine", "broker", "run", "--data-dir", str(tmp_path),
         "--port", str(port), "--tls-port", "0", "--user", "", "--log-dest", "stderr"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        wait_for_port(port, timeout=10)
        assert proc.poll() is None
        assert f"listener {port} 127.0.0.1" in (tmp_path / "mosquitto.conf").read_text()
        assert (tmp_path / "passwd").exists() and (tmp_path / "acl").exists()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
