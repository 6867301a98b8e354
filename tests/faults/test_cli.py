"""`emma faults` refuses a bad rate or budget before it starts anything."""

from __future__ import annotations

import pytest

from emma.cli.main import main


@pytest.mark.parametrize("flag", ["--rate", "--budget-ms"])
def test_a_rate_or_budget_that_is_not_positive_is_refused(
    flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["faults", flag, "0"]) == 2
    assert f"{flag} must be > 0" in capsys.readouterr().err


def test_the_profile_must_be_short_or_long() -> None:
    with pytest.raises(SystemExit):
        main(["faults", "--profile", "endless"])
