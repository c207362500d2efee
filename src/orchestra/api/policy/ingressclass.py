"""IngressClass helpers shared by admission (DefaultIngressClass) and the ingress controller.

Owns: kube's default-class annotation (`ingressclass.kubernetes.io/is-default-class: "true"`), the
choice among several defaults (the newest, then by name, as the DefaultIngressClass admission plugin
chooses since 1.28) and the class an Ingress asks for (spec.ingressClassName, else the deprecated
`kubernetes.io/ingress.class` annotation).
Must not import: anything above the api layer.
"""

from __future__ import annotations

from orchestra.objects import Obj, annotations_of, as_dict, name_of

DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
CLASS_ANNOTATION = "kubernetes.io/ingress.class"


def is_default_ingress_class(obj: Obj) -> bool:
    return annotations_of(obj).get(DEFAULT_CLASS_ANNOTATION) == "true"


def default_ingress_class(classes: list[Obj]) -> Obj | None:
    """The default class: of those marked default, the newest (on a tie, the first name)."""
    marked = [c for c in classes if is_default_ingress_class(c)]
    if not marked:
        return None
    newest = max(str(as_dict(c.get("metadata")).get("creationTimestamp") or "") for c in marked)
    return min(
        (c for c in marked if str(as_dict(c.get("metadata")).get("creationTimestamp") or "") == newest),
        key=name_of,
    )


def requested_class(ingress: Obj) -> str | None:
    """The class an Ingress names: spec.ingressClassName, else the deprecated annotation; None for none."""
    name = as_dict(ingress.get("spec")).get("ingressClassName")
    if name is not None:
        return str(name)
    annotation = annotations_of(ingress).get(CLASS_ANNOTATION)
    return None if annotation is None else str(annotation)
