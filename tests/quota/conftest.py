from quotafactory import *  # noqa: F401,F403
