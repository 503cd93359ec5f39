"""Serializer base classes shared by every app."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.db import models
from rest_framework import fields, relations, serializers
from rest_framework.relations import PKOnlyObject

_M = TypeVar("_M", bound=models.Model)

# Fields whose output depends on the value alone (not on the request, the context or the parent
# serializer), so one instance of each can serve every response.
CONTEXT_FREE_FIELDS = (
    fields.BooleanField,
    fields.CharField,  # with EmailField, RegexField, SlugField, URLField
    fields.ChoiceField,
    fields.DateField,
    fields.DateTimeField,
    fields.DecimalField,
    fields.FloatField,
    fields.IntegerField,
    fields.JSONField,
    fields.ReadOnlyField,
    fields.TimeField,
    fields.UUIDField,
    relations.PrimaryKeyRelatedField,
)

_Plan = list[tuple[str, Callable[[Any], Any], Callable[[Any], Any]]]


class ModelSerializer(serializers.ModelSerializer[_M]):
    """DRF's ModelSerializer, rendering through fields built once per class.

    For every instance, DRF introspects the model and builds each field again, then walks them
    with generic per-field checks. For a small response that is most of the serializer's cost
    (docs/PERFORMANCE.md). Output needs neither: when every readable field is context-free, one
    set of fields, built on first use, renders every instance with DRF's own `get_attribute`,
    None handling and `to_representation`, so the output is what DRF would give. Serializers
    with other fields (a method field, hyperlinks, a nested serializer) render the usual way.
    Input validation is untouched.
    """

    @classmethod
    def _output_plan(cls) -> _Plan | None:
        """(name, get_attribute, to_representation) of each readable field, or None."""
        if "_output_plan_built" not in cls.__dict__:
            template = cls()
            readable = [field for field in template.fields.values() if not field.write_only]
            plan: _Plan | None = [
                (str(field.field_name), field.get_attribute, field.to_representation) for field in readable
            ]
            if not all(isinstance(field, CONTEXT_FREE_FIELDS) for field in readable):
                plan = None
            # On the class itself, not inherited: a subclass has its own fields.
            cls._output_plan_built = plan  # type: ignore[attr-defined]
        built: _Plan | None = cls.__dict__["_output_plan_built"]
        return built

    def to_representation(self, instance: _M) -> dict[str, Any]:
        plan = self._output_plan()
        if plan is None:
            return super().to_representation(instance)
        data: dict[str, Any] = {}
        for name, get_attribute, represent in plan:
            try:
                attribute = get_attribute(instance)
            except fields.SkipField:
                continue
            value = attribute.pk if isinstance(attribute, PKOnlyObject) else attribute
            data[name] = None if value is None else represent(attribute)
        return data
