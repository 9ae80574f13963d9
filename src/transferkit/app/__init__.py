"""``transferkit app``: a local web app to collect and label examples, train, try the model live, fix what it gets
wrong and take the model away. A project is a folder the CLI can read as well (see :mod:`.project`); the app is a
FastAPI application (:mod:`.web`) serving one page; training runs in a child process (:mod:`.runs`)."""

from .project import Project, ProjectError

__all__ = ["Project", "ProjectError"]
