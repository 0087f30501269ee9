"""The intake: Nova's notification stream into the desired state.

- :mod:`poolmgr.intake.parse`: legacy and versioned aggregate
  notifications, strictly checked, into one :class:`AggregateEvent`;
- :mod:`poolmgr.intake.endpoint`: the batch endpoint (one transaction per
  batch, poison messages logged, stored as rejected, counted and acked;
  a requeue only while the database cannot be reached);
- :mod:`poolmgr.intake.dispatcher`: the one-look dispatcher that counts
  and acks everything that is not ``aggregate.*`` before reading it, and
  the listener built with it.
"""
