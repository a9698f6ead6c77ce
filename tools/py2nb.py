"""Build a notebook from a percent-format script (authoring aid; the .ipynb in notebooks/ is what ships).

Cell markers, each on a line of its own:
    # %% [markdown]                         a Markdown cell; its lines start with "# "
    # %%                                    a code cell
    # %% solution id=ex1                    an nbgrader solution cell (holds ### BEGIN/END SOLUTION)
    # %% check id=ex1_check points=1        an nbgrader autograded test cell
Usage: python tools/py2nb.py SOURCE.py notebooks/NN_topic.ipynb
"""

import json
import re
import sys


def cell(kind, lines, options):
    text = "\n".join(lines).strip("\n")
    if kind == "markdown":
        text = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in text.split("\n"))
    metadata = {}
    if kind in ("solution", "check"):
        metadata["nbgrader"] = {"grade_id": options["id"], "schema_version": 3, "locked": kind == "check",
                                "solution": kind == "solution", "grade": kind == "check"}
        if kind == "check":
            metadata["nbgrader"]["points"] = int(options.get("points", 1))
    source = text.splitlines(keepends=True)
    if kind == "markdown":
        return {"cell_type": "markdown", "metadata": metadata, "source": source}
    return {"cell_type": "code", "execution_count": None, "metadata": metadata, "outputs": [], "source": source}


def convert(text):
    cells, kind, options, lines = [], None, {}, []
    for line in text.split("\n"):
        match = re.match(r"^# %%(?: \[(markdown)\])?(?: (solution|check))?(.*)$", line)
        if match:
            if kind is not None:
                cells.append(cell(kind, lines, options))
            kind = match.group(1) or match.group(2) or "code"
            options = dict(re.findall(r"(\w+)=(\S+)", match.group(3)))
            lines = []
        elif kind is not None:
            lines.append(line)
    if kind is not None:
        cells.append(cell(kind, lines, options))
    for number, each in enumerate(cells):
        each["id"] = each["metadata"].get("nbgrader", {}).get("grade_id", f"cell-{number:03d}").replace("_", "-")
    return {"cells": cells, "nbformat": 4, "nbformat_minor": 5,
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                         "language_info": {"name": "python"}, "colab": {"provenance": []}}}


if __name__ == "__main__":
    source, target = sys.argv[1:3]
    with open(source, encoding="utf-8") as f:
        notebook = convert(f.read())
    with open(target, "w", encoding="utf-8") as f:
        json.dump(notebook, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"{target}: {len(notebook['cells'])} cells")
