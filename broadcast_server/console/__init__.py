"""The web console in Vietnamese: server-rendered pages for broadcasters, approvers and technicians."""
