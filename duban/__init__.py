"""duban 督办: plans as data, tasks on time, an audit trail you can trust."""

__version__ = "0.1.0"
