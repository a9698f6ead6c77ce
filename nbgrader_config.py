# nbgrader settings for the course (README, "For a classroom"). `make student` and `make grade` use them, and so
# does any nbgrader command run from the top of the checkout.
import os
from pathlib import Path

c = get_config()  # noqa: F821 (nbgrader provides it)

COURSE = Path(__file__).resolve().parent / "course"  # nbgrader's course folder: ignored by git
c.CourseDirectory.root = os.environ.get("NBGRADER_COURSE_ROOT", str(COURSE))
c.CourseDirectory.course_id = "keras-dl-course"

# Grading runs the smoke profile unless the instructor exports NNUTILS_PROFILE=full, and it records its
# results in the course folder, never in the checkout's results/ (the README's table).
os.environ.setdefault("NNUTILS_PROFILE", "smoke")
os.environ.setdefault("NNUTILS_RESULTS_DIR", str(Path(c.CourseDirectory.root) / "results"))

# Seconds a cell may run: smoke cells take seconds, full-profile training cells up to about 15 minutes here.
c.Execute.timeout = 600 if os.environ["NNUTILS_PROFILE"] == "smoke" else 3600
