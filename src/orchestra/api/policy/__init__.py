"""api.policy: the per-kind rules the verbs apply, as kube-apiserver 1.32 applies them.

The verbs (api/request/core.py) run them on every write in this order: the strategy
(`strategy.prepare_for_create` / `prepare_for_update`: what the server resets or derives, which
kinds track metadata.generation), `defaults.default(kind, obj)`, admission (`admission.py`:
Priority, DefaultStorageClass, DefaultIngressClass, StorageObjectInUseProtection, the LimitRanger's
defaults; then the configurable plugins the core was given, such as serviceaccount.py's
ServiceAccount plugin and tolerationseconds.py's DefaultTolerationSeconds),
`validation.validate(kind, obj, old, subresource=, version=) -> list[Cause]`, for a new Service the
allocation of its cluster IP and node ports (`allocators.ServiceAllocator`), then the validating
plugins that read the namespace's policy objects (`admission.validate_limits`: limitranger.py;
`admission.charge_quotas`: quota/, kube's ResourceQuota evaluators, also used by the quota
controller).
Custom resources follow their CustomResourceDefinition: crd/ holds the schema machinery (structural
schemas, validation, defaulting, pruning, CEL) and the CRD kind's own rules; quota admission counts
them too (`count/<plural>.<group>`).
Helpers of one kind that other layers share live here too: pdb.py (which pods a
PodDisruptionBudget selects, its DisruptionAllowed condition: pods/eviction and the disruption
controller), storageclass.py (a claim's class, the default class: admission, the printers, the
scheduler's volume check and the volume controller) and ingressclass.py (the default IngressClass,
the class an Ingress asks for: DefaultIngressClass admission and the ingress controller).

New code here: a kind's defaults in defaults.py, its validation in validation/ (the module of its
API group), what the server sets on create/update in strategy.py, an admission plugin's effect in
admission.py; a helper of one kind that reconcilers also need gets a module of its own.
Must not import: api/request, api/tables or anything above the api layer (the verbs call these
rules; a rule never calls a verb); from the api only errors, registry and api/machinery.
"""
