"""The transition log: one row per status change of any object with a state machine."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class Transition(models.Model):
    """One move of one object's state machine: which object, from, to, why, who and when.

    Written only by `penguinmails.states` (the one transition helper). The object is named by
    its model label (`object_type`, the content type's natural key "app_label.model") and id
    rather than a foreign key to django_content_type: that table exists in public and in every
    tenant schema with different ids, and ContentType's per-process cache would mix them up.
    """

    object_type = models.CharField(max_length=100)
    object_id = models.BigIntegerField()
    from_status = models.CharField(max_length=32)
    to_status = models.CharField(max_length=32)
    reason = models.CharField(max_length=1000, blank=True)
    # Who moved it, as shown: a user's email, "system", or "job:<id>" for a background job.
    actor = models.CharField(max_length=320, default="system")
    actor_user_id = models.BigIntegerField(null=True, blank=True)  # when a user moved it
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "state_transitions"
        ordering = ["at", "id"]
        indexes = [
            models.Index(fields=["object_type", "object_id", "at"], name="transition_object_idx")
        ]

    def __str__(self) -> str:
        return f"{self.object_type}#{self.object_id}: {self.from_status} -> {self.to_status}"
