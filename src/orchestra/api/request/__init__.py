"""api.request: the verbs every kind shares, from a request's body to the store and back.

Entry points: `core.ApiCore(store)` — get, list, create, update (also status), patch (every patch
type and server-side apply), delete, get_scale/update_scale, bind; `watch.watch` and
`watch.WatchStream` (watch semantics in bounded pages); `eviction.evict` (pods/eviction); the
value types in types.py (`WriteOptions`, `WriteResult`, `ListResult`).

Modules, one concept each:
  * the core: core.py (the verbs, the order of a write), deletion.py (preconditions, propagation,
    graceful deletion, finalizers), subresources.py (scale, binding), serverside.py (the apply
    write path), eviction.py (pods/eviction over the core and api/policy/pdb.py), quota.py (the
    namespace's LimitRanges and ResourceQuotas on the write path; charged quotas stored with a
    compare-and-swap), admitting.py (the configurable admission plugins' side of a write),
    tokenrequest.py (serviceaccounts/token, the TokenRequest verb over api/serviceaccount), types.py;
  * reads: watch.py, listoptions.py (LIST/WATCH options as kube checks them), labelcache.py (the
    labels of stored objects between label-selected LISTs);
  * bodies: bodies.py (size and depth limits, JSON/YAML decoding, the limits of stored objects),
    yamlbody.py (YAML without alias bombs; the CLI's manifest loader uses it too), typemeta.py
    (apiVersion/kind of written bodies), schema.py (the 1.32 OpenAPI schema: strict decoding,
    field metadata for the patch engines);
  * the patch engines, pure functions on JSON: patch.py (merge and JSON patch, and the front of
    the other two), smp.py (strategic merge patch), apply.py (server-side apply and managedFields);
  * stored.py: the stored encoding of objects (`Codec`: JSON, then each resource's storage
    transformer), uids, resourceVersions, the metadata the server sets; encryption.py: the aesgcm
    and identity transformers from an EncryptionConfiguration, and the migration of stale values;
    decoding.py: kube's strict decoder and fieldValidation for written bodies and patch results;
  * custom resources: custom.py (their decoding, strategy, validation and versions on the way in and
    out, through api/policy/crd), customkinds.py (the registry kept in step with stored CRDs),
    customschema.py (a custom version's schema as server-side apply reads it).
Kubernetes protobuf bodies are decoded before they get here (apiserver/protobuf.py).
A type served over another type's stored objects (`ResourceType.stored_as`: autoscaling/v1
HorizontalPodAutoscalers stored as v2, events.k8s.io/v1 Events stored as core/v1 Events): the verbs
take and return objects at the requested type and keep the stored one under the stored type's keys,
converting with api/conversion (core, deletion, serverside, watch); the rules of api/policy see the
stored form only (validation is told the version written in: events.k8s.io/v1 has stricter rules).
A custom resource's versions are its CRD's (custom.py `_presented`/`_stored`,
conversion None): its rules run at the version requested, the store keeps the storage version.

New code here: a verb, a query parameter or a subresource every kind (or several) has; a rule
for one kind goes to api/policy/, its Table columns to api/tables/.
Must not import: api/tables, the apiserver or anything else above the api layer.
"""
