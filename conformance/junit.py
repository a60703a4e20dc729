"""JUnit XML for CI systems (GitHub, GitLab, Jenkins): one testcase per case, one testsuite per
backend, direction and check.

A failing status (FAIL, REJECTED-VALID, ACCEPTED-INVALID, CRASHED) is a <failure> whose text holds
the message, the worst element and the repro line; UNSUPPORTED and SKIPPED are <skipped>, and so
is KNOWN-FAIL (a framework's known deviation, reported and not gating, as pytest reports xfail);
every other status passes, its status and message in <system-out>.
"""

from __future__ import annotations

import socket
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

from runtime.files import atomic_write
from runtime.records import Record, Status

NOT_RUN = frozenset({Status.UNSUPPORTED, Status.SKIPPED, Status.KNOWN_FAIL})


def _details(record: Record) -> str:
    lines = [f"{record.status}: {record.case}", record.message]
    if record.worst is not None:
        w = record.worst
        lines.append(f"worst element {w.index}: expected {w.expected!r}, got {w.got!r}, "
                     f"error {w.error:.3g} = {w.ratio:.3g} x bound {w.bound:.3g}")
    if record.repro:
        lines.append(f"repro: {record.repro}")
    return "\n".join(line for line in lines if line)


def _testcase(suite: ET.Element, record: Record, classname: str) -> None:
    case = ET.SubElement(suite, "testcase", classname=classname, name=record.case,
                         time=f"{record.seconds or 0.0:.6f}")
    first = (record.message.splitlines() or [""])[0][:500]
    if record.status.failing:
        failure = ET.SubElement(case, "failure", type=str(record.status),
                                message=f"{record.status}: {first}")
        failure.text = _details(record)
    elif record.status in NOT_RUN:
        ET.SubElement(case, "skipped", type=str(record.status), message=f"{record.status}: {first}")
    else:
        ET.SubElement(case, "system-out").text = _details(record)


def junit_xml(records: list[Record], name: str = "conv3d-parity") -> ET.Element:
    """The <testsuites> element of `records`."""
    groups: dict[tuple[str, str, str], list[Record]] = defaultdict(list)
    for record in records:
        groups[(record.backend, record.direction, record.check)].append(record)
    root = ET.Element("testsuites", name=name)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    totals = dict(tests=0, failures=0, errors=0, skipped=0)
    for (backend, direction, check), rows in groups.items():
        counts = dict(tests=len(rows), failures=sum(r.status.failing for r in rows), errors=0,
                      skipped=sum(r.status in NOT_RUN for r in rows))
        seconds = sum(r.seconds or 0.0 for r in rows)
        suite = ET.SubElement(root, "testsuite", name=f"{backend} {direction} {check}",
                              timestamp=stamp, hostname=socket.gethostname(), time=f"{seconds:.6f}",
                              **{k: str(v) for k, v in counts.items()})
        for record in rows:
            _testcase(suite, record, f"conv3d_parity.{backend}.{direction}.{check}")
        totals = {k: totals[k] + counts[k] for k in totals}
    root.attrib.update({k: str(v) for k, v in totals.items()})
    return root


def write_junit(records: list[Record], path: Path) -> Path:
    """Write `records` as JUnit XML to `path` (atomically: a reader never sees half a file)."""
    root = junit_xml(records)
    ET.indent(root)
    atomic_write(Path(path), ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n")
    return Path(path)
