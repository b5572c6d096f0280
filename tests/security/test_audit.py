"""scripts/audit's verdict on pip-audit's JSON (scripts/audit_report.py): a vulnerability fails, an advisory database
that could not be reached or knew nothing warns loudly instead of passing as clean."""

import json
import subprocess
import sys
from pathlib import Path

REPORT = Path(__file__).resolve().parents[2] / "scripts" / "audit_report.py"


def _report(tmp_path, audit, status=0, stderr=""):
    audit_file = tmp_path / "audit.json"
    if audit is not None:
        audit_file.write_text(json.dumps(audit))
    (tmp_path / "stderr").write_text(stderr)
    return subprocess.run(
        [sys.executable, REPORT, audit_file, str(status), tmp_path / "stderr"], capture_output=True, text=True
    )


def test_a_known_vulnerability_fails(tmp_path):
    audit = {
        "dependencies": [
            {"name": "django", "version": "6.1", "vulns": [{"id": "PYSEC-2026-1", "fix_versions": ["6.1.1"]}]},
            {"name": "arq", "version": "0.28", "vulns": []},
        ]
    }
    result = _report(tmp_path, audit, status=1)
    assert result.returncode == 1
    assert "VULNERABLE: django 6.1: PYSEC-2026-1 (fixed in: 6.1.1)" in result.stdout


def test_clean_passes(tmp_path):
    result = _report(tmp_path, {"dependencies": [{"name": "arq", "version": "0.28", "vulns": []}]})
    assert result.returncode == 0
    assert "No known vulnerabilities in 1 audited dependencies" in result.stdout


def test_a_database_that_knew_nothing_warns_and_passes(tmp_path):
    skip = "Dependency not found on PyPI and could not be audited: arq (0.28)"
    result = _report(tmp_path, {"dependencies": [{"name": "arq", "version": "0.28", "skip_reason": skip}]})
    assert result.returncode == 0
    assert "WARNING" in result.stdout and "NOT audited" in result.stdout


def test_no_database_reached_warns_and_passes(tmp_path):
    result = _report(tmp_path, None, status=1, stderr="ConnectionError: Failed to resolve 'api.osv.dev'\n")
    assert result.returncode == 0
    assert "WARNING: no advisory database could be reached" in result.stdout
    assert "api.osv.dev" in result.stdout
