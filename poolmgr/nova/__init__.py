"""Nova: the API client, the desired-state sync, the metadata reflection.

- :mod:`poolmgr.nova.client`: keystoneauth1 + openstacksdk, the calls
  poolmgr makes (aggregates, their metadata, compute services);
- :mod:`poolmgr.nova.sync`: the periodic sync of the API's aggregates
  into the mirror (it adopts, and heals what notifications lost);
- :mod:`poolmgr.nova.reflect`: each pool's state written back into its
  aggregate's metadata.
"""
