# /etc/jupyter/nbgrader_config.py in every student's server (or image).
# Students only fetch, submit and read feedback through nbgrader's
# exchange; they never see the course repository.
c = get_config()  # noqa: F821

c.CourseDirectory.course_id = "everything-is-a-mapping"
# The shared exchange: a folder on storage mounted in every server
# (NFS, CephFS, a Kubernetes ReadWriteMany volume ...), mode 1777.
c.Exchange.root = "/srv/nbgrader/exchange"
