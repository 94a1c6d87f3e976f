# JupyterHub on one server (Linux users, PAM login), students and
# instructors on the same machine, nbgrader's exchange in a local folder.
# Install: pip install jupyterhub jupyterlab nbgrader (same pins as the
# course) and `make build` in /srv/course for the instructors.
c = get_config()  # noqa: F821

c.JupyterHub.bind_url = "http://:8000"
c.JupyterHub.authenticator_class = "jupyterhub.auth.PAMAuthenticator"
c.Authenticator.admin_users = {"instructor1"}
c.Authenticator.allow_all = False
c.Authenticator.allowed_users = {"instructor1", "student1", "student2"}
c.Spawner.default_url = "/lab"
# Students' servers see the exchange through the global
# /etc/jupyter/nbgrader_config.py (docs/deploy/nbgrader_config_students.py).
c.Spawner.environment = {"COURSE_EXCHANGE": "/srv/nbgrader/exchange"}
# Instructors grade from a shell (python -m coursekit ...), as root for the
# sandbox; the formgrader is not needed, and students must not get it:
#   jupyter server extension disable --sys-prefix \
#       nbgrader.server_extensions.formgrader
#   jupyter labextension disable --level=sys_prefix \
#       @jupyter/nbgrader:formgrader
#   jupyter labextension disable --level=sys_prefix \
#       @jupyter/nbgrader:create-assignment
