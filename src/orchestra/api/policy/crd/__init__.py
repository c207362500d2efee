"""api.policy.crd: CustomResourceDefinitions and the custom resources they define, as pure functions.

Front door of the schema machinery (each module one concept, tested with tables):
  * structural.py  the structural schema of a CRD version (`Structural`);
  * schemarules.py what a schema may say (structurality, per-node OpenAPI rules), schema.py in order;
  * definition.py  the CRD object validated like kube-apiserver (`validate_crd`); strategy.py its
                   defaults and PrepareForCreate/Update; versions.py kube's version priority;
  * values.py      a value checked against a schema (kube-openapi's messages); formats.py the formats;
  * defaulting.py, pruning.py, listtype.py: defaults, unknown-field pruning, set/map uniqueness;
  * cel.py, celext.py: x-kubernetes-validations (the common-expression-language library and kube's
                   extension functions); fieldpath.py: paths into a schema;
  * model.py       a served version compiled once (`compiled(CustomKind)`); resource.py the rules every
                   write of a custom resource goes through (kube's customResourceStrategy).
The verbs (api/request) call resource.py for custom kinds; the CRD kind itself is dispatched like
any built-in kind (defaults.py, strategy.py, validation/).
Must not import: api/request, api/tables, the store, or anything above the api layer.
"""
