"""Command-line options for `pytest conformance --backend NAME` (the CI front door)."""


def pytest_addoption(parser):
    group = parser.getgroup("conformance")
    group.addoption("--backend", action="append", default=[],
                    help="backend to check (registered name, 'all', or module:attr); repeatable. "
                         "Default: every available CPU backend.")
    group.addoption("--profile", default="quick", help="conformance profile (quick, ci, thorough)")
    group.addoption("--conformance-seed", type=int, default=0, help="hypothesis seed")
