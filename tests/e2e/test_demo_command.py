"""`emma demo` as a user runs it: the whole mesh up, decisions shown, everything stopped, fast."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path


def test_emma_demo_runs_well_under_a_minute(tmp_path: Path) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "emma.cli", "demo", "--run-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    # A newcomer's first look should take well under a minute, even on a busy machine.
    assert elapsed < 60
    out = result.stdout
    assert "loaded 5 demo customers" in out
    header = next(line for line in out.splitlines() if line.startswith("customer"))
    assert header.split() == [
        "customer", "touchpoint", "store", "offer", "channel", "p", "degraded", "trace", "id",
    ]  # fmt: skip
    rows = [
        line.split() for line in out.splitlines() if re.match(r"(anna|ben|clara|david|emil) ", line)
    ]
    assert {row[0] for row in rows} == {"anna", "ben", "clara", "david", "emil"}
    assert {row[1] for row in rows} >= {"app", "pos", "web"}
    # Every row ends with its 32-hex-digit trace id.
    assert all(re.fullmatch(r"[0-9a-f]{32}", row[-1]) for row in rows)
    # Simulated customers reward what they like; the learner's models must raise that share.
    learned = re.search(r"liked offers: (\d+)% of the first \d+ decisions, (\d+)% of the last", out)
    assert learned, out
    first, last = int(learned.group(1)), int(learned.group(2))
    assert last > first
    # A geofence push lands in the wallet; the till is reminded of it and redeems it.
    push = re.search(r"^  push '([\w-]+)'", out, re.MULTILINE)
    assert push, out
    coupon = push.group(1)
    assert f"anna's wallet holds ['{coupon}']" in out
    assert f"remind the cashier of ['{coupon}']" in out
    assert "the app's wallet now holds []" in out
    assert "stopped everything" in out
    # The service logs stay behind for the curious.
    assert (tmp_path / "decision.log").exists()
