"""Where staff read a course error's whole cause: the last line of what students read of it."""

# Students read a course error in the commit status, the comment and the result page; what it
# keeps from them (a hidden test, the reference solution's code and what it raised), staff read
# in the run's report.
WITHHELD_NOTE = "the course's staff see the whole cause in GET /api/runs"
