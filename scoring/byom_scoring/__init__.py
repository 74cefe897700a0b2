"""Code shared by the entry scripts in this folder (uploaded with them as the deployment's code)."""
