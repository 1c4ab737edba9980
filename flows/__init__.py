"""duban's duties as Prefect 3 flows, and their deployments (`duban prefect deploy`).

- `flows.duties`: the flows, thin wrappers over `duban.engine`: materialize one duty as of its
  period's opening, reconcile everything (catch-up, events), sweep the ladders, deliver the
  outbox. Each takes the flow run's scheduled start time as `now`.
- `flows.deployments`: one deployment per periodic duty of every active plan, and one each
  for reconcile, sweep and deliver, created or updated in place from the catalog.
- `flows.schedules`: the duty's period openings as an RRULE (pure; no Prefect import).

Prefect is an optional extra (`pip install 'duban[prefect]'`); only `flows.duties` and
`flows.deployments` import it.
"""
