"""k8s.io/apimachinery/pkg/util/validation: DNS-1123 / DNS-1035 names, qualified names, label values,
port names and numbers, ConfigMap keys, with kube's regex error messages.

Owns: the `is_*` name checks (each returns a list of messages) and the message constants.
Must not import: anything in orchestra.api but errors.py and field.py.
"""

from __future__ import annotations

import re
from typing import Any

from orchestra.api.errors import Cause
from orchestra.api.machinery.field import (
    invalid,
    is_int,
    required,
)

# --- k8s.io/apimachinery/pkg/util/validation ---------------------------------------------------------


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    out = msg + " (e.g. "
    for i, ex in enumerate(examples):
        if i > 0:
            out += " or "
        out += f"'{ex}', "
    return out + f"regex used for validation is '{fmt}')"


def max_len_error(n: int) -> str:
    return f"must be no more than {n} characters"


DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN_FMT = DNS1123_LABEL_FMT + r"(\." + DNS1123_LABEL_FMT + ")*"
DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
QNAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
LABEL_VALUE_FMT = "(" + QNAME_FMT + ")?"
CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"
PERCENT_FMT = "[0-9]+%"

DNS1123_LABEL_MSG = regex_error(
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    "and end with an alphanumeric character",
    DNS1123_LABEL_FMT,
    "my-name",
    "123-abc",
)
DNS1123_SUBDOMAIN_MSG = regex_error(
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
    "must start and end with an alphanumeric character",
    DNS1123_SUBDOMAIN_FMT,
    "example.com",
)
DNS1035_LABEL_MSG = regex_error(
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character",
    DNS1035_LABEL_FMT,
    "my-name",
    "abc-123",
)
QNAME_ERR = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
    "character"
)
LABEL_VALUE_MSG = regex_error(
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character",
    LABEL_VALUE_FMT,
    "MyValue",
    "my_value",
    "12345",
)
CONFIG_KEY_MSG = regex_error(
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
    CONFIG_KEY_FMT,
    "key.name",
    "KEY_NAME",
    "key-name",
)
PORT_RANGE_MSG = "must be between 1 and 65535, inclusive"


def anchored(fmt: str) -> re.Pattern[str]:
    return re.compile("^" + fmt + "$")


_DNS1123_LABEL_RE = anchored(DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN_RE = anchored(DNS1123_SUBDOMAIN_FMT)
_DNS1035_LABEL_RE = anchored(DNS1035_LABEL_FMT)
_QNAME_RE = anchored(QNAME_FMT)
_LABEL_VALUE_RE = anchored(LABEL_VALUE_FMT)
_CONFIG_KEY_RE = anchored(CONFIG_KEY_FMT)
PERCENT_RE = anchored(PERCENT_FMT)


def is_path_segment_name(name: str) -> list[str]:
    """path.ValidatePathSegmentName: what the generic registry requires of every object name."""
    if name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in name]


def is_dns1123_label(value: str) -> list[str]:
    errs = [max_len_error(63)] if len(value) > 63 else []
    if not _DNS1123_LABEL_RE.match(value):
        errs.append(DNS1123_LABEL_MSG)
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    errs = [max_len_error(253)] if len(value) > 253 else []
    if not _DNS1123_SUBDOMAIN_RE.match(value):
        errs.append(DNS1123_SUBDOMAIN_MSG)
    return errs


def is_dns1035_label(value: str) -> list[str]:
    errs = [max_len_error(63)] if len(value) > 63 else []
    if not _DNS1035_LABEL_RE.match(value):
        errs.append(DNS1035_LABEL_MSG)
    return errs


def is_qualified_name(value: str) -> list[str]:
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in is_dns1123_subdomain(prefix))
    else:
        return [
            "a qualified name "
            + regex_error(QNAME_ERR, QNAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part " + max_len_error(63))
    if not _QNAME_RE.match(name):
        errs.append("name part " + regex_error(QNAME_ERR, QNAME_FMT, "MyName", "my.name", "123-abc"))
    return errs


def is_valid_label_value(value: str) -> list[str]:
    errs = [max_len_error(63)] if len(value) > 63 else []
    if not _LABEL_VALUE_RE.match(value):
        errs.append(LABEL_VALUE_MSG)
    return errs


def is_valid_port_name(port: str) -> list[str]:
    errs = [max_len_error(15)] if len(port) > 15 else []
    if not re.fullmatch("[-a-z0-9]+", port):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search("[a-z]", port):
        errs.append("must contain at least one letter (a-z)")
    if "--" in port:
        errs.append("must not contain consecutive hyphens")
    if port and (port[0] == "-" or port[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def is_config_map_key(key: str) -> list[str]:
    errs = [max_len_error(253)] if len(key) > 253 else []
    if not _CONFIG_KEY_RE.match(key):
        errs.append(CONFIG_KEY_MSG)
    if key == ".":
        errs.append("must not be '.'")
    elif key == "..":
        errs.append("must not be '..'")
    elif key.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def port_number(value: Any, path: str) -> list[Cause]:
    return [] if is_int(value) and 1 <= value <= 65535 else [invalid(path, value, PORT_RANGE_MSG)]


def port_number_or_name(value: Any, path: str) -> list[Cause]:
    if isinstance(value, str):
        return [invalid(path, value, m) for m in is_valid_port_name(value)]
    if is_int(value):
        if value == 0:
            return [required(path, "")]
        return port_number(value, path)
    return [required(path, "")]
