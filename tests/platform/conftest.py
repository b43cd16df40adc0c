from platformsupport import bucket, connected, platform, s3_url, tiny_archive  # noqa: F401
from quotafactory import *  # noqa: F401,F403
