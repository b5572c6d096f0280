"""Reads pip-audit's JSON (scripts/audit) and says what was really audited.

Usage: audit_report.py AUDIT_JSON PIP_AUDIT_STATUS STDERR_FILE. Exit 1 when a dependency has a known vulnerability;
0 with a WARNING when no advisory database answered (no JSON, or every dependency skipped); 0 when all is clean.
"""

import json
import sys
from pathlib import Path


def report(audit: dict | None, status: int, stderr: str) -> tuple[int, list[str]]:
    if audit is None:
        last = stderr.strip().splitlines()[-1:] or [f"pip-audit exited with {status}"]
        return 0, [f"WARNING: no advisory database could be reached; dependencies NOT audited ({last[0]})"]
    deps = audit.get("dependencies", [])
    skipped = [d for d in deps if d.get("skip_reason")]
    vulnerable = [d for d in deps if d.get("vulns")]
    lines = []
    for dep in vulnerable:
        for vuln in dep["vulns"]:
            fixes = ", ".join(vuln.get("fix_versions") or []) or "none yet"
            lines.append(f"VULNERABLE: {dep['name']} {dep['version']}: {vuln['id']} (fixed in: {fixes})")
    if deps and len(skipped) == len(deps):
        lines.append(
            f"WARNING: the advisory database knew none of the {len(deps)} locked dependencies "
            "(offline, or an index mirror without advisories); dependencies NOT audited"
        )
        return (1 if vulnerable else 0), lines
    if skipped:
        names = ", ".join(f"{d['name']} {d['version']}" for d in skipped)
        lines.append(f"WARNING: not audited (unknown to the advisory database): {names}")
    audited = len(deps) - len(skipped)
    if vulnerable:
        lines.append(f"{len(vulnerable)} of {audited} audited dependencies have known vulnerabilities")
        return 1, lines
    lines.append(f"No known vulnerabilities in {audited} audited dependencies")
    return 0, lines


def main(path: str, status: str, stderr_path: str) -> int:
    try:
        audit = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        audit = None
    stderr = Path(stderr_path).read_text() if Path(stderr_path).exists() else ""
    code, lines = report(audit, int(status), stderr)
    print("\n".join(lines))
    return code


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
