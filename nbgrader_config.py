"""nbgrader: exercises are written once, with solutions, in solutions/<set>/; the student
versions in exercises/<set>/ are generated from them (`make exercises`)."""

c = get_config()  # noqa: F821  (provided by nbgrader when it loads this file)
c.CourseDirectory.root = "."
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"

# Student versions keep the cells' tags (raises-exception on check cells, for nbval).
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
