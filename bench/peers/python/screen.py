"""The screening job every peer of bench/compare.sh does (issue 15), in plain Python.

Reads the blacklist CSV that bench/compare.sh writes (rule_name,pattern,...) into a dict and
decides one caller: the same five variables callguard sets, in the same order.
"""
import csv
import sys


def load(path):
    table = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            table[row["pattern"]] = row["rule_name"]
    print(f"loaded {len(table)} numbers from {path}", file=sys.stderr)
    return table


def decide(table, caller):
    """(blocked, [(NAME, value), ...]) for one caller."""
    rule = table.get(caller)
    if rule is None:
        return False, [
            ("VERDICT", "allow"),
            ("ACTION", "pass"),
            ("RULE", ""),
            ("LIST", "default"),
            ("REASON", "no rule matched on trunk support"),
        ]
    return True, [
        ("VERDICT", "block"),
        ("ACTION", "reject"),
        ("RULE", rule),
        ("LIST", "blacklist"),
        ("REASON", f"blacklist rule {rule} exact {caller} on trunk support"),
    ]
