"""The core branch's revisions (Alembic loads each file here by path; this file only makes the folder a package)."""
