"""api.machinery: the pieces of kube's k8s.io/apimachinery that every kind and every layer shares.

Owns:
  * selectors.py      label and field selectors: `parse_label_selector`, `parse_field_selector`,
                      `from_label_selector_object` (a metav1.LabelSelector), `LabelSelector.matches`
                      (k8s.io/apimachinery/pkg/labels, pkg/fields)
  * selectorparse.py  their query grammars with apimachinery's exact error strings
  * field.py          field.Error as kube renders it: the Cause constructors (`required`, `invalid`,
                      `not_supported`, ...), Go's %q / %#v printing (util/validation/field)
  * names.py          DNS-1123 / DNS-1035 names, qualified names, label values, port names
                      (util/validation)
  * cidr.py           `parse_cidr`: k8s.io/utils/net's ParseCIDRSloppy (NetworkPolicy ipBlocks)
Used by the API's request path (selectors of LIST/WATCH, list options), by per-kind policy
(validation, PodDisruptionBudgets) and by every layer above the api (controllers, scheduler, informers).
New code here: only what kube keeps in apimachinery and more than one area needs; a rule for one kind
goes to api/policy/.
Must not import: anything in orchestra.api but errors.py (the areas above import this package).
"""
