"""nox sessions: lint (ruff, mypy, import-linter, the import graph), tests, bench."""

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["lint", "tests"]


@nox.session
def lint(session: nox.Session) -> None:
    # the same steps as `./dev lint` (which runs them from .venv, without a new environment)
    session.install("-e", ".[lint]")
    session.run("ruff", "check", "src", "tests", "bench", "scripts")
    session.run("mypy")
    session.run("lint-imports")
    session.run("python", "scripts/import_graph.py")  # cycles and files over 600 lines


@nox.session
def tests(session: nox.Session) -> None:
    session.install("-e", ".[test]")
    # as `./dev test`: two xdist workers, the units of tests/parallel.py
    session.run("pytest", "-n", "2", "--dist", "loadscope", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    session.install("-e", ".")
    for script in sorted(__import__("pathlib").Path("bench").glob("*.py")):
        session.run("python", str(script))
