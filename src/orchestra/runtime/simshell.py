"""Parsing `sh -c` scripts for the simulated runtime: a script becomes a list of simple steps.

Owns: `parse(script) -> list[Step]`. A step is one simple command (its words, where its stdout
goes, its stdin file) and the operator after it (`;`, newline, `&&`, `||`, `&`, `|`). A command
substitution (`$(...)`, backticks, and `$((...))`) stays in its word as a placeholder, `SUB % n`,
for the interpreter to expand from `Step.subs[n]` (the command; "" for arithmetic). Compound
commands (`for`/`while`/`until` ... `done`, `if` ... `fi`, `case` ... `esac`, `{ ... }`, `( ... )`)
are not looked into: each is one opaque step (`compound=True`), which the interpreter treats as
an unrecognised program. Quotes are removed as sh does; a quoted operator is taken for an operator
(the simulation is approximate there). Malformed scripts (an unterminated quote) raise ShellSyntaxError.
Must not import: anything above the runtime layer.
"""

from __future__ import annotations

import shlex

import attrs

OPERATORS = ("&&", "||", ";;", ">>", ">&", "<&", "&>", ">|", ";", "&", "|", "\n", "(", ")", "<", ">")
SEPARATORS = {";", "\n", "&&", "||", "&", "|", ";;"}
REDIRECTS = {">", ">>", ">&", "<&", "&>", ">|", "<"}
SUB = "\x00%d\x00"  # a command substitution's placeholder in a word
OPENERS = {"for": "done", "while": "done", "until": "done", "select": "done", "if": "fi", "case": "esac",
           "{": "}", "(": ")"}
# after these, the next word is in command position (may open a compound command)
COMMAND_START = {*SEPARATORS, "(", "{", "do", "then", "else", "elif", "!"}


class ShellSyntaxError(ValueError):
    """The script would make sh fail with a syntax error (exit 2)."""


@attrs.frozen
class Step:
    words: tuple[str, ...] = ()
    compound: bool = False  # a loop, condition, group or subshell: not interpreted
    stdout: str = ""  # "" the container's stdout, "&2" its stderr, else the file written to
    append: bool = False
    stdin: str = ""  # a file read as stdin ("" none)
    op: str = ";"  # the operator after the step
    subs: tuple[str, ...] = ()  # the script's command substitutions (placeholders in words refer to them)


def substitutions(script: str) -> tuple[str, tuple[str, ...]]:
    """The script with each `$(...)`, `` `...` `` and `$((...))` replaced by a placeholder, and their
    commands."""
    out: list[str] = []
    subs: list[str] = []
    i = 0
    while i < len(script):
        if script.startswith("$(", i):
            depth, j = 1, i + 2
            while j < len(script) and depth:
                depth += {"(": 1, ")": -1}.get(script[j], 0)
                j += 1
            if depth:
                raise ShellSyntaxError("syntax error: unterminated command substitution")
            inner = script[i + 2:j - 1]
            subs.append("" if inner.startswith("(") else inner)  # $((...)): arithmetic, not interpreted
        elif script[i] == "`":
            j = script.find("`", i + 1) + 1
            if not j:
                raise ShellSyntaxError("syntax error: unterminated command substitution")
            subs.append(script[i + 1:j - 1])
        else:
            out.append(script[i])
            i += 1
            continue
        out.append(SUB % (len(subs) - 1))
        i = j
    return "".join(out), tuple(subs)


def tokens(script: str) -> list[str]:
    lexer = shlex.shlex(script, posix=True, punctuation_chars=";&|<>()\n")
    lexer.whitespace = " \t\r"
    lexer.whitespace_split = True
    try:
        raw = list(lexer)
    except ValueError as exc:  # shlex: "No closing quotation" / "No escaped character"
        raise ShellSyntaxError(f"syntax error: {str(exc).lower()}") from None
    out: list[str] = []
    for token in raw:
        out += _split_operators(token) if token and token[0] in ";&|<>()\n" else [token]
    return out


def _split_operators(run: str) -> list[str]:
    """A run of punctuation (`;\\n`, `>&`, `&&`) as the operators it is made of, longest first."""
    out = []
    while run:
        op = next((o for o in OPERATORS if run.startswith(o)), run[0])
        out.append(op)
        run = run[len(op):]
    return out


def parse(script: str) -> list[Step]:
    script, subs = substitutions(script)
    toks = tokens(script)
    steps: list[Step] = []
    i = 0
    while i < len(toks):
        if toks[i] in SEPARATORS:  # an empty command (a blank line, `;;`)
            i += 1
            continue
        if toks[i] in OPENERS:
            end = _compound_end(toks, i)
            step, i = _tail(toks, end, Step(words=tuple(toks[i:end]), compound=True))
        else:
            step, i = _simple(toks, i)
        steps.append(attrs.evolve(step, subs=subs) if subs else step)
    return steps


def _compound_end(toks: list[str], start: int) -> int:
    """The index just past the compound command opening at `start` (its closer matched with nesting)."""
    stack = [OPENERS[toks[start]]]
    i = start + 1
    while i < len(toks) and stack:
        tok = toks[i]
        in_command_position = toks[i - 1] in COMMAND_START
        if tok == stack[-1] and (in_command_position or tok == ")"):
            stack.pop()
        elif tok in OPENERS and (in_command_position or tok == "("):
            stack.append(OPENERS[tok])
        i += 1
    if stack:
        raise ShellSyntaxError(f"syntax error: unexpected end of file (expecting \"{stack[-1]}\")")
    return i


def _simple(toks: list[str], i: int) -> tuple[Step, int]:
    words: list[str] = []
    while i < len(toks) and toks[i] not in SEPARATORS and toks[i] not in REDIRECTS and toks[i] not in "()":
        words.append(toks[i])
        i += 1
    return _tail(toks, i, Step(words=tuple(words)))


def _tail(toks: list[str], i: int, step: Step) -> tuple[Step, int]:
    """Redirections and more words after a command, up to and including its operator."""
    words = list(step.words)
    stdout, append, stdin = step.stdout, step.append, step.stdin
    while i < len(toks) and toks[i] not in SEPARATORS:
        tok = toks[i]
        if tok in REDIRECTS:
            target = toks[i + 1] if i + 1 < len(toks) and toks[i + 1] not in SEPARATORS else ""
            if not target:
                raise ShellSyntaxError("syntax error: unexpected redirection")
            fd = words.pop() if not step.compound and words and words[-1] in ("1", "2") else "1"
            if tok == "<":
                stdin = target
            elif tok in (">&", "<&"):
                stdout = "&2" if (fd, target) == ("1", "2") else stdout
            elif fd == "1" or tok == "&>":
                stdout, append = target, tok == ">>"
            i += 2
        elif tok in "()":
            raise ShellSyntaxError(f'syntax error: unexpected "{tok}"')
        else:
            if not step.compound:
                words.append(tok)
            i += 1
    op = toks[i] if i < len(toks) else ";"
    i += 1
    while op in ("&&", "||", "|") and i < len(toks) and toks[i] == "\n":  # a line continued after an operator
        i += 1
    return attrs.evolve(step, words=tuple(words), stdout=stdout, append=append, stdin=stdin, op=op), i
