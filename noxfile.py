"""nox sessions: lint (ruff, mypy, import-linter), tests, bench."""

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["lint", "tests"]


@nox.session
def lint(session: nox.Session) -> None:
    session.install("-e", ".[lint]")
    session.run("ruff", "check", "src", "tests", "bench")
    session.run("mypy")
    session.run("lint-imports")


@nox.session
def tests(session: nox.Session) -> None:
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    session.install("-e", ".")
    for script in sorted(__import__("pathlib").Path("bench").glob("*.py")):
        session.run("python", str(script))
