"""The API layer: Kubernetes object semantics over the store, the same for every writer.

Controllers call it in process (client/local.py); kubectl, the CLI and remote node agents reach it
over HTTP (apiserver/). Objects are plain JSON dicts (orchestra.objects); the store holds their bytes.

Areas (each package's docstring is its front door; arrows are checked by import-linter):
  * request/    the verbs every kind shares: `ApiCore` (create/get/list/update/patch/delete, status,
                scale, binding, apply), watch, deletion and finalizers, pods/eviction, list options,
                the patch engines (JSON, merge, strategic merge, server-side apply), the OpenAPI
                schema check, request-body limits and the stored encoding of objects.
  * policy/     per-kind rules the verbs apply: defaults, validation/, admission, strategy
                (PrepareForCreate/Update), allocators (cluster IPs, node ports), and the helpers of
                one kind other layers share (pdb.py, storageclass.py).
  * tables/     representation: server-side Tables (`kubectl get` columns), cell for cell like kube.
  * machinery/  kube's apimachinery: label and field selectors, field errors, name rules.
  * conversion/ types served over another type's stored objects: `stored(rt, obj)` /
                `served(rt, obj)` between a served type and the stored one (hpa.py: kube's
                autoscaling v1 <-> v2; events.py: events.k8s.io/v1 <-> core/v1 Events); the
                verbs in request/ convert at every call.
  * serviceaccount/  ServiceAccount tokens: signing and checking the JWTs (PyJWT), their claims, and
                whether what a token names still exists (the TokenRequest verb, the apiserver's token
                authenticator and the token controllers use it).
  * errors.py   ApiError and its subclasses -> Status dicts; `Cause` (reason, message, field).
  * user.py     `UserInfo` (who asks: name, uid, groups, extra) and the well-known users and groups.
  * registry.py the kinds: `ResourceType`, `Registry`, `BUILTIN`, `DEFAULT_REGISTRY`;
                `Registry.types` one per stored resource, `Registry.served` also the types served
                over another's stored objects (`ResourceType.stored_as`: autoscaling/v1 HPAs,
                events.k8s.io/v1 Events) and a CRD's other versions; custom kinds
                (CustomResourceDefinitions) join a core's own registry at run time (`set_custom`).
  * metrics.py  metrics.k8s.io (NodeMetrics/PodMetrics, `Usage`), outside the main registry.
Layers inside the api (top may import bottom): request | tables -> policy -> machinery | metrics |
conversion | serviceaccount -> registry | errors | user. The verbs call the rules; a rule never calls
a verb.

Where a new kind's code goes:
  1. registry.py: its `ResourceType` in BUILTIN (group, plural, short names, subresources); the
     schema check, discovery, the garbage collector and namespace deletion then know it. Served at
     more than one version or group: the storage version's type, `_also_served` for each other
     one, and the conversions in conversion/ (policy sees the stored form only, validation also the
     version written in; tables convert to the stored form).
  2. policy/defaults.py: its defaults (kube's SetDefaults_X).
  3. policy/validation/: its ValidateX/ValidateXUpdate in the module of its API group, dispatched
     from validation/__init__.py.
  4. policy/strategy.py for what the server resets or derives on create/update (with a status
     subresource: the zero status a create answers, in _ZERO_STATUS; tests/api/test_create_status.py
     covers every served version); policy/admission.py for admission plugins' effects.
  5. tables/: its columns (columns.py) and row printer (the module of its group).
  6. reconcilers/: its controller, composed in reconcilers/cluster.py (or workloads/__init__.py).
  7. cli/describe.py: a describer, if `orchestra describe` should do better than the generic one.
  8. scripts/extract-k8s-proto.py, re-run, if kubectl sends it as protobuf (`kubectl create ...`).
A custom kind needs none of this: its CRD is the data (policy/crd compiles it, request/custom.py
applies it, tables/custom.py prints it).
A new verb or query parameter goes to request/; a new subresource to request/subresources.py.

Must not import: the apiserver, app, cli, client, controller, reconcilers, node, net or runtime
(the store and orchestra.objects are below it).
"""
