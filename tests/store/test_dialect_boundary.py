"""Every SQLite-versus-PostgreSQL difference lives in store/dialect.py: nothing else in the
package asks which database it is on."""

from __future__ import annotations

import re
from pathlib import Path

import flowscope

PACKAGE = Path(flowscope.__file__).parent
ASKS_THE_DATABASE = re.compile(r"\.dialect\.name\b|\bdialect_name\b")


def test_only_the_dialect_module_asks_which_database_it_is_on() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != PACKAGE / "store" / "dialect.py"
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if ASKS_THE_DATABASE.search(line)
    ]
    assert offenders == [], "use flowscope.store.dialect instead:\n" + "\n".join(offenders)


def test_the_check_finds_what_it_looks_for() -> None:
    assert ASKS_THE_DATABASE.search('if conn.dialect.name == "postgresql":')
    assert not ASKS_THE_DATABASE.search("dialect.is_postgres(conn)")
