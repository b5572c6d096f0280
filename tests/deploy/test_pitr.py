"""Point-in-time recovery, tried: deploy/pitr-drill (docs/deploy.md, 5) makes a throwaway cluster with WAL
archiving, a base backup, migrates Parkgate into it, makes bookings, records a target time, makes more, restores
the base backup to the target from the archive. Exactly the bookings made before the target must be there."""

import json
import subprocess
import sys

from tests.support import ARTIFACTS, ROOT


def test_the_pitr_drill_restores_exactly_the_bookings_made_before_the_target():
    result = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "pitr-drill"), "--bookings", "4"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "pitr-drill.log").write_text(result.stdout + result.stderr)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    print(figures)
    assert figures["bookings_before_target"] == 4 and figures["bookings_after_target"] == 4
    assert figures["restored_bookings"] == 4, figures
    assert figures["restored_exactly_those_before_target"], figures
