"""The classroom workflow with nbgrader: student versions of the notebooks, and autograding (README, "For a classroom").

    python tools/classroom.py student [--check] [NAME ...]   notebooks/NAME.ipynb -> student/NAME.ipynb
    python tools/classroom.py grade [NAME ...]               autograde course/submitted/<student>/NAME/NAME.ipynb

`student` copies each notebook into nbgrader's course folder (course/, ignored by git), runs
`nbgrader generate_assignment` (solutions become `raise NotImplementedError()`, hidden tests are removed),
then puts back the outputs of the teaching cells before the exercises (plots, tables, full-run numbers), so
that the student version reads like the course. Exercise cells, check cells and every cell after the first
exercise have no outputs. `--check` regenerates into a temporary folder and fails when student/ is stale.
`grade` autogrades in the profile of nbgrader_config.py (smoke unless NNUTILS_PROFILE=full) and prints scores.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
STUDENT = ROOT / "student"
COURSE = ROOT / "course"
COURSE_ID = "keras-dl-course"
BADGE = "colab.research.google.com/github/dl-course/keras-dl-course/blob/main/"
TEACHER_WORDS = re.compile(r"\(in this teacher version it holds a worked solution between the nbgrader\s+solution "
                           r"markers; in the student version it says `raise NotImplementedError\(\)`\)")
STUDENT_WORDS = "(it says `raise NotImplementedError()`: replace that line with your answer)"


def names(requested=()):
    """The notebooks' names (NN_topic), all of them or the requested ones, checked."""
    available = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    unknown = sorted(set(requested) - set(available))
    if unknown:
        raise SystemExit(f"unknown notebook(s) {unknown}; expected names such as {available[0]!r}")
    return list(requested) or available


def nbgrader(course, *args):
    """Run one nbgrader command from the checkout (so nbgrader_config.py applies) on the given course folder."""
    bin_dir = str(Path(sys.executable).parent)  # nbgrader runs alembic and jupyter from the same environment
    env = dict(os.environ, NBGRADER_COURSE_ROOT=str(course), PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))
    command = [str(Path(bin_dir) / "nbgrader"), *args]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[1:])} failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")
    return done


def first_exercise(cells):
    """The index of the first nbgrader solution cell: outputs from here on are not the student's to see."""
    return next(i for i, cell in enumerate(cells) if cell["metadata"].get("nbgrader", {}).get("solution"))


def student_version(teacher, release):
    """nbgrader's release notebook with the teacher notebook's teaching outputs and student wording (a new dict)."""
    student = json.loads(json.dumps(release))
    if len(student["cells"]) != len(teacher["cells"]):
        raise ValueError("the release notebook must have the teacher notebook's cells, one for one")
    first = first_exercise(teacher["cells"])
    for i, (ours, theirs) in enumerate(zip(teacher["cells"], student["cells"])):
        if theirs["cell_type"] == "code":
            keep = i < first
            theirs["outputs"] = ours["outputs"] if keep else []
            theirs["execution_count"] = ours["execution_count"] if keep else None
        else:
            text = "".join(theirs["source"])
            text = TEACHER_WORDS.sub(STUDENT_WORDS, text).replace(BADGE + "notebooks/", BADGE + "student/")
            theirs["source"] = text.splitlines(keepends=True)
    return student


def write_notebook(notebook, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def generate(selected, course, out):
    """Student versions of the selected notebooks into out/, through nbgrader in the course folder."""
    for name in selected:
        source = course / "source" / name / f"{name}.ipynb"
        source.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(NOTEBOOKS / f"{name}.ipynb", source)
        nbgrader(course, "generate_assignment", name, "--force")
        teacher = json.loads(source.read_text(encoding="utf-8"))
        release = json.loads((course / "release" / name / f"{name}.ipynb").read_text(encoding="utf-8"))
        write_notebook(student_version(teacher, release), out / f"{name}.ipynb")


def stale(selected):
    """The committed student versions that differ from a fresh generation (missing ones included)."""
    with tempfile.TemporaryDirectory() as tmp:
        generate(selected, Path(tmp) / "course", Path(tmp) / "student")
        return [name for name in selected if not (STUDENT / f"{name}.ipynb").exists()
                or (STUDENT / f"{name}.ipynb").read_bytes() != (Path(tmp) / "student" / f"{name}.ipynb").read_bytes()]


def scores(course, assignment):
    """{student: {grade_id: (score, max_score)}} of an autograded assignment, from nbgrader's gradebook."""
    from nbgrader.api import Gradebook

    result = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id=COURSE_ID) as gradebook:
        for submission in gradebook.assignment_submissions(assignment):
            notebook = gradebook.find_submission_notebook(assignment, assignment, submission.student.id)
            result[submission.student.id] = {g.name: (g.score, g.max_score) for g in notebook.grades}
    return result


def grade(selected, course):
    """Autograde every submission of the selected assignments; returns {assignment: scores(...)}."""
    submitted = Path(course) / "submitted"
    present = sorted({p.name for p in submitted.glob("*/*") if p.is_dir()})
    if not present:
        raise SystemExit(f"no submissions in {submitted}: put each one at {submitted}/<student>/<name>/<name>.ipynb "
                         "(nbgrader's layout, <name> as in notebooks/, for example 01_mlp)")
    results = {}
    for name in [n for n in selected if n in present]:
        if not (Path(course) / "release" / name / f"{name}.ipynb").exists():
            generate([name], Path(course), Path(course) / "student")  # the gradebook needs the assignment
        nbgrader(course, "autograde", name, "--force")
        results[name] = scores(Path(course), name)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["student", "grade"])
    parser.add_argument("names", nargs="*", help="notebook names such as 01_mlp (default: all)")
    parser.add_argument("--check", action="store_true", help="student: fail if student/ is not up to date")
    parser.add_argument("--course", type=Path, default=COURSE, help="nbgrader's course folder (default: course/)")
    args = parser.parse_args(argv)
    selected = names(args.names)
    if args.command == "student" and args.check:
        outdated = stale(selected)
        if outdated:
            raise SystemExit(f"stale student versions: {outdated}; run `make student` and commit student/")
        print(f"student/ is up to date for {len(selected)} notebooks")
    elif args.command == "student":
        generate(selected, args.course.resolve(), STUDENT)
        print(f"wrote {len(selected)} student versions to {STUDENT}")
    else:
        profile = os.environ.get("NNUTILS_PROFILE", "smoke")
        print(f"autograding in the {profile} profile (set NNUTILS_PROFILE=full for full-profile grading)")
        for name, by_student in grade(selected, args.course.resolve()).items():
            for student, cells in sorted(by_student.items()):
                got, best = sum(s for s, _ in cells.values()), sum(m for _, m in cells.values())
                print(f"{name:26s} {student:20s} {got:g} / {best:g}")


if __name__ == "__main__":
    main()
