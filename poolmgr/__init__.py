import warnings

# NOTE(eventlet): oslo.messaging imports oslo.service's eventlet backend at
# import time and it warns on every command; poolmgr never uses eventlet.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
