"""What the cluster fixtures share: free ports on 127.0.0.1, daemons started in a session
of their own with their output to a log, waiting on a daemon's readiness while noticing
its exit, and running a command that must succeed."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_daemon(cmd: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen:
    """Start `cmd` in `cwd` as the leader of a new session (its process group is what the
    fixture kills), stdout and stderr to `log`."""
    out = open(log, "wb")  # noqa: SIM115 - lives with the daemon
    return subprocess.Popen(
        cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )


def wait_for(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    procs: list[subprocess.Popen],
    who: str,
    errors: tuple[type[BaseException], ...] = (Exception,),
) -> None:
    """Poll `check` every 0.5 s until it holds (a raised `errors` counts as not yet);
    RuntimeError as soon as one of `procs` has exited, TimeoutError after `timeout`.
    `who` names the daemons in both messages."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if any(p.poll() is not None for p in procs):
            raise RuntimeError(f"a {who} exited while waiting for {what}")
        with suppress(*errors):
            if check():
                return
        time.sleep(0.5)
    raise TimeoutError(f"{who}: no {what} after {timeout:.0f} s")


def run_ok(
    cmd: list[str], cwd: Path, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess:
    """Run `cmd` (stdout and stderr together, as text); fails the test on a non-zero exit,
    showing the end of its output."""
    out = subprocess.run(
        cmd,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-6000:]
    return out
