"""Regenerate the license texts of the workspace template from the SPDX License List.

Source: the ``spdx`` wheel on PyPI (https://pypi.org/project/spdx/2.5.1/, CC0-1.0), whose
``spdx/data/<id>.txt`` files are the plain texts of https://spdx.org/licenses/ (license-list-data).
Usage: ``pip download --no-deps spdx==2.5.1`` then ``python import_spdx.py spdx-2.5.1-*.whl``.

Edits, each one a template variable of the SPDX text (its ``<<var ...>>`` markup or the example
notice), never the license terms: the copyright line becomes ``{{ copyright }}`` (year and holder,
rendered by LICENSE.jinja); ISC's example holder "ISC" becomes "THE AUTHOR" (as in
https://choosealicense.com/licenses/isc/); BSD-3-Clause's variables take their original wording.
Trailing spaces are removed and each file ends with one newline (.editorconfig, whitespace hooks).
GPL-3.0 and Apache-2.0 keep their "how to apply" appendices verbatim, placeholders included.
"""

from __future__ import annotations

import re
import sys
import zipfile
from pathlib import Path

# SPDX id of the template choice -> file in the spdx wheel (GPL-3.0 is GPL-3.0-or-later's text).
FILES = {
    "MIT": "MIT.txt",
    "Apache-2.0": "Apache-2.0.txt",
    "BSD-3-Clause": "BSD-3-Clause.txt",
    "GPL-3.0-or-later": "GPL-3.0.txt",
    "MPL-2.0": "MPL-2.0.txt",
    "ISC": "ISC.txt",
}
COPYRIGHT = "{{ copyright }}"


def convert(spdx_id: str, text: str) -> str:
    """The template text of ``spdx_id`` from its SPDX plain text."""
    if spdx_id == "MIT":
        text = text.replace("Copyright (c) <year> <copyright holders>", COPYRIGHT)
    elif spdx_id == "BSD-3-Clause":
        text = re.sub(r"<<var;name=\w+;original=([^;]*);match=[^>]*>>", r"\1", text)
        text = text.replace("Copyright (c)  <year> <owner>.", COPYRIGHT + ".")
    elif spdx_id == "ISC":
        text = text.replace("ISC License:", "ISC License")
        text = re.sub(r"Copyright \(c\) 2004-2010 .*\nCopyright \(c\) 1995-2003 .*", COPYRIGHT, text)
        text = text.replace("AND ISC DISCLAIMS", "AND THE AUTHOR DISCLAIMS")
        text = text.replace("SHALL ISC BE LIABLE", "SHALL THE AUTHOR BE LIABLE")
    lines = [line.rstrip() for line in text.splitlines()]
    out = "\n".join(lines).strip("\n") + "\n"
    if "<<" in out or "{%" in out or "{#" in out or out.count("{{") != out.count(COPYRIGHT) \
            or (spdx_id in ("MIT", "BSD-3-Clause", "ISC") and COPYRIGHT not in out):
        raise SystemExit(f"{spdx_id}: unexpected markup left in the text")
    return out


def main(wheel: str) -> None:
    here = Path(__file__).resolve().parent
    with zipfile.ZipFile(wheel) as zf:
        for spdx_id, name in FILES.items():
            text = zf.read(f"spdx/data/{name}").decode("utf-8")
            (here / f"{spdx_id}.txt").write_text(convert(spdx_id, text), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1])
