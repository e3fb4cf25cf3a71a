"""The gradehook command line: run the service, manage the database, grade locally."""
