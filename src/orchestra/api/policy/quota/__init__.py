"""ResourceQuota: kube's quota evaluators, admission check and usage calculation, as pure rules.

Modules (each one concept; arrows: may import):
  * resources.py   resource lists and kube's quota arithmetic, a pod's requests/limits
  * scopes.py      quota scopes and scope selectors, and which pods they select   -> defaults
  * evaluators.py  per group resource: what an object counts, when it is charged  -> resources, scopes
  * check.py       the admission check (CheckRequest) and its 403 messages        -> evaluators
  * usage.py       a quota's recalculated status (CalculateUsage)                  -> evaluators, scopes
Users: the API core's write path (api/policy/admission.py -> check; api/request/quota.py writes the
charged quotas with a compare-and-swap) and the resourcequota controller (reconcilers/resourcequota.py
-> usage). Must not import: anything above the api layer.
"""
